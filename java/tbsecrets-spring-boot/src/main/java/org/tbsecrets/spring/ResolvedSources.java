package org.tbsecrets.spring;

import java.util.Map;
import org.springframework.boot.origin.Origin;
import org.springframework.boot.origin.OriginLookup;
import org.springframework.core.env.MapPropertySource;
import org.springframework.core.env.PropertySource;
import org.springframework.core.env.SystemEnvironmentPropertySource;

/** The {@link ResolvedSecrets} sources: one for ordinary sources, one for environment variables. */
final class ResolvedSources {
    private ResolvedSources() {}

    /**
     * A resolved copy of a source, of the kind that keeps its name mapping.
     *
     * @param original the source
     * @param resolved its resolved properties (name as in the source → value)
     * @param placeholders the same names → their raw text
     * @return the copy
     */
    static PropertySource<?> of(PropertySource<?> original, Map<String, Object> resolved,
            Map<String, String> placeholders) {
        if (original instanceof SystemEnvironmentPropertySource) {
            return new EnvironmentSource(original, resolved, placeholders);
        }
        return new MapSource(original, resolved, placeholders);
    }

    @SuppressWarnings("unchecked")
    private static Origin originOf(PropertySource<?> source, String key) {
        return source instanceof OriginLookup<?> lookup ? ((OriginLookup<String>) lookup).getOrigin(key) : null;
    }

    /** A resolved copy of an ordinary source; origins (file and line) are the original's. */
    static final class MapSource extends MapPropertySource implements ResolvedSecrets, OriginLookup<String> {
        private final PropertySource<?> original;
        private final Map<String, String> placeholders;

        MapSource(PropertySource<?> original, Map<String, Object> resolved, Map<String, String> placeholders) {
            super(NAME_PREFIX + original.getName(), resolved);
            this.original = original;
            this.placeholders = placeholders;
        }

        @Override
        public String placeholderText(String name) {
            return placeholders.get(name);
        }

        @Override
        public String originalSourceName() {
            return original.getName();
        }

        @Override
        public Origin getOrigin(String key) {
            return originOf(original, key);
        }
    }

    /**
     * A resolved copy of the environment variables: a {@code SystemEnvironmentPropertySource}
     * whose name ends with {@code -systemEnvironment}, so Spring Boot maps names as it does for
     * the original ({@code SPRING_DATASOURCE_PASSWORD} for {@code spring.datasource.password}).
     */
    static final class EnvironmentSource extends SystemEnvironmentPropertySource
            implements ResolvedSecrets, OriginLookup<String> {
        private final PropertySource<?> original;
        private final Map<String, String> placeholders;

        EnvironmentSource(PropertySource<?> original, Map<String, Object> resolved,
                Map<String, String> placeholders) {
            super(NAME_PREFIX + original.getName(), resolved);
            this.original = original;
            this.placeholders = placeholders;
        }

        @Override
        public String placeholderText(String name) {
            return placeholders.get(name);
        }

        @Override
        public String originalSourceName() {
            return original.getName();
        }

        @Override
        public Origin getOrigin(String key) {
            return originOf(original, key);
        }
    }
}
