/**
 * Spring Boot integration of tbsecrets: {@code ${secret:NAME}} placeholders in the values of any
 * property source are resolved from a tbsecrets store before Spring's own placeholder processing
 * sees them (see {@code SecretsEnvironmentPostProcessor}).
 */
package org.tbsecrets.spring;
