package org.tbsecrets.internal;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.tbsecrets.AuditVerification;
import org.tbsecrets.ErrorCode;
import org.tbsecrets.PlaceholderProblem;
import org.tbsecrets.RotationPlan;
import org.tbsecrets.RotationReport;
import org.tbsecrets.SecretInfo;
import org.tbsecrets.SecretPage;
import org.tbsecrets.SecretRef;
import org.tbsecrets.SecretType;
import org.tbsecrets.SecretUsage;
import org.tbsecrets.SecretVersion;

/**
 * Decodes the compact big-endian results of the native library ({@code src/jni/wire.rs}): a
 * string is a u32 length and UTF-8 bytes, a type one byte (0 TEXT, 1 TEXT_FILE, 255 none), an
 * optional time a presence byte and an i64 of epoch milliseconds. Internal.
 */
public final class Wire {
    private static final int NO_TYPE = 255;
    private static final SecretType[] TYPES = SecretType.values();

    private final ByteBuffer in;

    private Wire(byte[] bytes) {
        this.in = ByteBuffer.wrap(bytes);
    }

    /**
     * A decoded materialised resolve result.
     *
     * @param document the resolved UTF-8 document, or {@code null} when unchanged (the caller
     *     wipes it)
     * @param files the paths of the materialised files
     */
    public record Materialized(byte[] document, List<String> files) {}

    /**
     * Decodes a materialised resolve result: {@code u8 changed | [u32 length | UTF-8 document] |
     * u32 count | paths}.
     *
     * @param bytes the encoded result (not modified: the caller wipes it)
     * @return the document and the files
     */
    public static Materialized materialized(byte[] bytes) {
        Wire w = new Wire(bytes);
        byte[] document = null;
        if (w.in.get() != 0) {
            document = new byte[w.count()];
            w.in.get(document);
        }
        int n = w.count();
        List<String> files = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            files.add(w.string());
        }
        return new Materialized(document, List.copyOf(files));
    }

    /**
     * Decodes one SecretInfo.
     *
     * @param bytes the encoded result
     * @return the info
     */
    public static SecretInfo info(byte[] bytes) {
        return new Wire(bytes).info();
    }

    /**
     * Decodes a page of SecretInfo.
     *
     * @param bytes the encoded result
     * @return the page
     */
    public static SecretPage page(byte[] bytes) {
        Wire w = new Wire(bytes);
        int n = w.count();
        List<SecretInfo> items = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            items.add(w.info());
        }
        long total = w.in.getLong();
        boolean hasMore = w.in.get() != 0;
        String nextAfter = w.in.get() != 0 ? w.string() : null;
        return new SecretPage(items, total, hasMore, nextAfter);
    }

    /**
     * Decodes a list of SecretInfo.
     *
     * @param bytes the encoded result
     * @return the infos
     */
    public static List<SecretInfo> infos(byte[] bytes) {
        Wire w = new Wire(bytes);
        int n = w.count();
        List<SecretInfo> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            out.add(w.info());
        }
        return List.copyOf(out);
    }

    /**
     * Decodes a rotation plan.
     *
     * @param bytes the encoded result
     * @return the plan
     */
    public static RotationPlan plan(byte[] bytes) {
        Wire w = new Wire(bytes);
        return new RotationPlan(
                w.in.getLong(),
                w.in.getLong(),
                w.in.getLong(),
                w.in.getLong(),
                w.in.getLong(),
                w.in.getLong(),
                w.in.getLong());
    }

    /**
     * Decodes a rotation report.
     *
     * @param bytes the encoded result
     * @return the report
     */
    public static RotationReport rotation(byte[] bytes) {
        Wire w = new Wire(bytes);
        return new RotationReport(w.in.getLong(), w.in.getLong(), w.in.getLong());
    }

    /**
     * Decodes an audit verification.
     *
     * @param bytes the encoded result
     * @return the verification
     */
    public static AuditVerification verification(byte[] bytes) {
        Wire w = new Wire(bytes);
        long records = w.in.getLong();
        long lastSeq = w.in.getLong();
        if (w.in.get() == 0) {
            return new AuditVerification(records, lastSeq, 0L, null);
        }
        long line = w.in.getLong();
        return new AuditVerification(records, lastSeq, line, w.string());
    }

    /**
     * Decodes kept versions.
     *
     * @param bytes the encoded result
     * @return the versions, newest first
     */
    public static List<SecretVersion> versions(byte[] bytes) {
        Wire w = new Wire(bytes);
        int n = w.count();
        List<SecretVersion> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            out.add(new SecretVersion(w.in.getLong(), Instant.ofEpochMilli(w.in.getLong()), w.in.get() != 0));
        }
        return List.copyOf(out);
    }

    /**
     * Decodes references.
     *
     * @param bytes the encoded result
     * @return the references, in order of first appearance
     */
    public static List<SecretRef> references(byte[] bytes) {
        Wire w = new Wire(bytes);
        int n = w.count();
        List<SecretRef> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            out.add(new SecretRef(w.string(), w.type()));
        }
        return List.copyOf(out);
    }

    /**
     * Decodes where-used entries.
     *
     * @param bytes the encoded result
     * @return the usages
     */
    public static List<SecretUsage> usages(byte[] bytes) {
        Wire w = new Wire(bytes);
        int n = w.count();
        List<SecretUsage> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            out.add(new SecretUsage(w.string(), w.string(), w.type()));
        }
        return List.copyOf(out);
    }

    /**
     * Decodes placeholder problems.
     *
     * @param bytes the encoded problems
     * @return the problems
     */
    public static List<PlaceholderProblem> problems(byte[] bytes) {
        Wire w = new Wire(bytes);
        int n = w.count();
        List<PlaceholderProblem> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            out.add(new PlaceholderProblem(ErrorCode.of(w.in.getInt()), w.string(), w.in.getLong(), w.string()));
        }
        return List.copyOf(out);
    }

    private SecretInfo info() {
        String tenant = string();
        String name = string();
        SecretType type = type();
        String description = string();
        long version = in.getLong();
        Instant created = Instant.ofEpochMilli(in.getLong());
        Instant updated = Instant.ofEpochMilli(in.getLong());
        Instant valueUpdated = Instant.ofEpochMilli(in.getLong());
        Instant lastUsed = in.get() != 0 ? Instant.ofEpochMilli(in.getLong()) : null;
        long useCount = in.getLong();
        Instant deleted = in.get() != 0 ? Instant.ofEpochMilli(in.getLong()) : null;
        return new SecretInfo(
                tenant, name, type, description, version, created, updated, valueUpdated, lastUsed, useCount, deleted);
    }

    private int count() {
        return in.getInt();
    }

    private String string() {
        int len = in.getInt();
        String s = new String(in.array(), in.position(), len, StandardCharsets.UTF_8);
        in.position(in.position() + len);
        return s;
    }

    private SecretType type() {
        int t = in.get() & 0xff;
        return t == NO_TYPE ? null : TYPES[t];
    }
}
