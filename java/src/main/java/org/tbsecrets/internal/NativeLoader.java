package org.tbsecrets.internal;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Properties;

/**
 * Finds and loads the tbsecrets native library, trying in order:
 *
 * <ol>
 *   <li>the system property {@value #PATH_PROPERTY} (an explicit override): the library file, or a
 *       directory holding it;
 *   <li>the copy bundled in the jar under {@code /native/<os>-<arch>/}, extracted to a private
 *       temporary directory (mode 0700, under {@value #TMPDIR_PROPERTY} or {@code java.io.tmpdir})
 *       and deleted again once loaded;
 *   <li>only if the jar bundles no copy for this platform: {@code java.library.path}, through
 *       {@code System.loadLibrary("tbsecrets")}. An unrelated {@code libtbsecrets.so} that happens
 *       to be on {@code java.library.path} is never preferred to the jar's own copy.
 * </ol>
 *
 * <p>If all fail, one {@link UnsatisfiedLinkError} lists every place tried and why. A library
 * whose version differs from this jar's is refused. Internal, but {@link #loadedFrom()} is handy
 * in diagnostics.
 */
public final class NativeLoader {
    /** System property naming the library file (or its directory) to load first. */
    public static final String PATH_PROPERTY = "tbsecrets.native.path";
    /** System property naming the directory the bundled library is extracted into. */
    public static final String TMPDIR_PROPERTY = "tbsecrets.native.tmpdir";
    /** The library's base name ({@code libtbsecrets.so} on Linux). */
    public static final String LIBRARY_NAME = "tbsecrets";

    private static String loadedFrom;
    private static UnsatisfiedLinkError failure;

    private NativeLoader() {}

    /**
     * Loads the library once; later calls return at once (or rethrow the first failure).
     *
     * @throws UnsatisfiedLinkError listing every place tried, if none worked
     */
    public static synchronized void load() {
        if (failure != null) {
            throw failure;
        }
        if (loadedFrom != null) {
            return;
        }
        List<String> tried = new ArrayList<>();
        String where = tryProperty(tried);
        if (where == null) {
            String resource = bundledResource();
            if (NativeLoader.class.getResource(resource) != null) {
                where = tryBundled(resource, tried);
                if (where == null) {
                    tried.add("java.library.path: not tried (the jar bundles " + resource + ")");
                }
            } else {
                tried.add("bundled " + resource + ": not in the jar (this platform is not bundled)");
                where = tryLibraryPath(tried);
            }
        }
        if (where == null) {
            failure = new UnsatisfiedLinkError("cannot load the tbsecrets native library for "
                    + platform() + "; tried:\n  - " + String.join("\n  - ", tried));
            throw failure;
        }
        loadedFrom = where;
        String expected = expectedVersion();
        String actual = Native.nativeVersion();
        if (!expected.equals(actual)) {
            failure = new UnsatisfiedLinkError("the tbsecrets native library loaded from " + where + " is version "
                    + actual + " but this jar needs version " + expected);
            throw failure;
        }
    }

    /**
     * Where the library was loaded from, e.g. {@code "bundled /native/linux-x86_64/libtbsecrets.so"}.
     *
     * @return a description, or {@code null} before loading
     */
    public static synchronized String loadedFrom() {
        return loadedFrom;
    }

    /**
     * The normalised platform, as the bundled directory names it: {@code <os>-<arch>} such as
     * {@code linux-x86_64}, {@code linux-aarch64}, {@code linux-musl-x86_64}, {@code mac-aarch64}.
     *
     * @return the platform id
     */
    public static String platform() {
        return os() + "-" + arch();
    }

    static String os() {
        String name = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        if (name.startsWith("linux")) {
            return isMusl() ? "linux-musl" : "linux";
        }
        if (name.startsWith("mac") || name.startsWith("darwin")) {
            return "mac";
        }
        if (name.startsWith("windows")) {
            return "windows";
        }
        return name.replaceAll("[^a-z0-9]", "");
    }

    static String arch() {
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        switch (arch) {
            case "amd64":
            case "x86_64":
            case "x64":
            case "em64t":
                return "x86_64";
            case "aarch64":
            case "arm64":
                return "aarch64";
            case "x86":
            case "i386":
            case "i486":
            case "i586":
            case "i686":
                return "x86";
            default:
                return arch.replaceAll("[^a-z0-9_]", "");
        }
    }

    private static boolean isMusl() {
        try (var libs = Files.newDirectoryStream(Path.of("/lib"), "ld-musl-*")) {
            return libs.iterator().hasNext();
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    private static String tryProperty(List<String> tried) {
        String value = System.getProperty(PATH_PROPERTY);
        if (value == null || value.isBlank()) {
            tried.add("system property " + PATH_PROPERTY + ": not set");
            return null;
        }
        Path path = Path.of(value);
        if (Files.isDirectory(path)) {
            path = path.resolve(System.mapLibraryName(LIBRARY_NAME));
        }
        path = path.toAbsolutePath();
        try {
            System.load(path.toString());
            return PATH_PROPERTY + " " + path;
        } catch (UnsatisfiedLinkError e) {
            tried.add("system property " + PATH_PROPERTY + " = " + path + ": " + e.getMessage());
            return null;
        }
    }

    private static String tryLibraryPath(List<String> tried) {
        try {
            System.loadLibrary(LIBRARY_NAME);
            return "java.library.path";
        } catch (UnsatisfiedLinkError e) {
            tried.add("java.library.path (" + System.getProperty("java.library.path") + "): " + e.getMessage());
            return null;
        }
    }

    private static String bundledResource() {
        return "/native/" + platform() + "/" + System.mapLibraryName(LIBRARY_NAME);
    }

    private static String tryBundled(String resource, List<String> tried) {
        try (InputStream in = NativeLoader.class.getResourceAsStream(resource)) {
            if (in == null) {
                tried.add("bundled " + resource + ": could not be read from the jar");
                return null;
            }
            Path dir = privateTempDir();
            Path file = dir.resolve(System.mapLibraryName(LIBRARY_NAME));
            try {
                Files.copy(in, file);
                System.load(file.toString());
            } finally {
                // The loaded mapping stays valid on Linux and macOS; Windows keeps the file open.
                if (!Files.deleteIfExists(file) || !Files.deleteIfExists(dir)) {
                    file.toFile().deleteOnExit();
                    dir.toFile().deleteOnExit();
                }
            }
            return "bundled " + resource;
        } catch (IOException | UncheckedIOException | UnsatisfiedLinkError | SecurityException e) {
            tried.add("bundled " + resource + ": " + e);
            return null;
        }
    }

    private static Path privateTempDir() throws IOException {
        String base = System.getProperty(TMPDIR_PROPERTY, System.getProperty("java.io.tmpdir"));
        Path parent = Path.of(base);
        if (FileSystems.getDefault().supportedFileAttributeViews().contains("posix")) {
            return Files.createTempDirectory(
                    parent, "tbsecrets-", PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        }
        return Files.createTempDirectory(parent, "tbsecrets-");
    }

    private static String expectedVersion() {
        Properties props = new Properties();
        try (InputStream in = NativeLoader.class.getResourceAsStream("tbsecrets.properties")) {
            if (in != null) {
                props.load(in);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return props.getProperty("version", "unknown");
    }
}
