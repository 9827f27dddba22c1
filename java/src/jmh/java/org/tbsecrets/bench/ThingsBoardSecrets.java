package org.tbsecrets.bench;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * Secrets kept the way ThingsBoard keeps them: AES-256-GCM ciphertexts in a map (a cache of the
 * secrets table), decrypted per use with {@code Cipher.getInstance("AES/GCM/NoPadding")}. The AAD
 * has the length of a tbsecrets value's AAD, so both sides authenticate the same amount of data.
 */
final class ThingsBoardSecrets {
    /** A sealed value. */
    record Sealed(byte[] iv, byte[] aad, byte[] ciphertext) {}

    final SecretKeySpec key;
    /** tenant → name → sealed value. */
    final Map<String, Map<String, Sealed>> sealed = new ConcurrentHashMap<>();

    ThingsBoardSecrets() {
        byte[] raw = new byte[32];
        new SecureRandom().nextBytes(raw);
        key = new SecretKeySpec(raw, "AES");
    }

    void put(String tenant, String name, String value) throws GeneralSecurityException {
        byte[] iv = new byte[12];
        new SecureRandom().nextBytes(iv);
        byte[] aad = new byte[4 + 18 + 4 + 17 + 4 + tenant.length() + 4 + name.length() + 4 + 4 + 4 + 8];
        Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
        c.init(Cipher.ENCRYPT_MODE, key, new GCMParameterSpec(128, iv));
        c.updateAAD(aad);
        byte[] ct = c.doFinal(value.getBytes(StandardCharsets.UTF_8));
        sealed.computeIfAbsent(tenant, t -> new ConcurrentHashMap<>()).put(name, new Sealed(iv, aad, ct));
    }

    /** ThingsBoard's way: a map lookup, then a new Cipher per call. */
    String getSecret(String tenant, String name) {
        Sealed s = sealed.get(tenant).get(name);
        if (s == null) {
            throw new IllegalStateException("no secret " + name);
        }
        try {
            Cipher cipher = Cipher.getInstance("AES/GCM/NoPadding");
            cipher.init(Cipher.DECRYPT_MODE, key, new GCMParameterSpec(128, s.iv()));
            cipher.updateAAD(s.aad());
            byte[] plain = cipher.doFinal(s.ciphertext());
            try {
                return new String(plain, StandardCharsets.UTF_8);
            } finally {
                Arrays.fill(plain, (byte) 0);
            }
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }
}
