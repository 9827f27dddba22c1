package org.tbsecrets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs the packaged jar in fresh JVMs (under -Xcheck:jni) with a tiny program compiled against it,
 * and checks each place the loader tries, in order: the {@code tbsecrets.native.path} property, the
 * bundled copy (preferred to any library on java.library.path), java.library.path only when the jar
 * bundles nothing for this platform, and the error listing every place when all fail.
 */
class BundledJarIT {
    private static final String MAIN = """
            import java.nio.file.*;
            import org.tbsecrets.*;
            import org.tbsecrets.internal.NativeLoader;
            public class Main {
                public static void main(String[] args) throws Exception {
                    byte[] key = new byte[32];
                    new java.security.SecureRandom().nextBytes(key);
                    try (SecretStorage s = SecretStorage.open(Path.of(args[0]), SecretStorageOptions.withMasterKey(key))) {
                        s.create("t", "MyApiKey", SecretType.TEXT, "s3cr3t".toCharArray(), "");
                        if (!"s3cr3t".equals(s.getSecret("t", "MyApiKey"))) throw new AssertionError("round trip");
                        if (!"{\\"k\\":\\"s3cr3t\\"}".equals(s.resolve("t", "{\\"k\\":\\"${secret:MyApiKey}\\"}"))) throw new AssertionError("resolve");
                    }
                    System.out.println("loaded from: " + NativeLoader.loadedFrom());
                }
            }
            """;

    @TempDir static Path work;
    static Path jar;
    static Path mainClasses;
    static Path classesOnly;
    static Path library;

    @BeforeAll
    static void compileMain() throws IOException {
        jar = Path.of(System.getProperty("tbsecrets.jar"));
        assertTrue(Files.isRegularFile(jar), "package the jar first: " + jar);
        mainClasses = Files.createDirectories(work.resolve("main"));
        Path source = mainClasses.resolve("Main.java");
        Files.writeString(source, MAIN);
        int rc = ToolProvider.getSystemJavaCompiler()
                .run(null, null, null, "-cp", jar.toString(), "-d", mainClasses.toString(), source.toString());
        assertEquals(0, rc, "compiling the tiny main against the jar");

        // The jar's classes without the bundled library, and the library on its own.
        classesOnly = Files.createDirectories(work.resolve("classes-only"));
        Path libDir = Files.createDirectories(work.resolve("lib"));
        try (JarFile jf = new JarFile(jar.toFile())) {
            for (JarEntry e : java.util.Collections.list(jf.entries())) {
                if (e.isDirectory()) {
                    continue;
                }
                Path target = e.getName().startsWith("native/")
                        ? libDir.resolve(Path.of(e.getName()).getFileName().toString())
                        : classesOnly.resolve(e.getName());
                Files.createDirectories(target.getParent());
                try (InputStream in = jf.getInputStream(e)) {
                    Files.copy(in, target);
                }
            }
        }
        library = libDir.resolve(System.mapLibraryName("tbsecrets"));
        assertTrue(Files.isRegularFile(library), "the jar bundles " + library.getFileName());
    }

    record Run(int exit, String output) {}

    private static Run java(String classpath, String... props) throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        String check = System.getProperty("tbsecrets.jni.check.args", "-Xcheck:jni");
        cmd.addAll(Arrays.asList(check.trim().split("\\s+")));
        cmd.addAll(Arrays.asList(props));
        cmd.add("-cp");
        cmd.add(classpath);
        cmd.add("Main");
        cmd.add(Files.createTempDirectory(work, "store").resolve("s.db").toString());
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the JVM finished");
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        return new Run(p.exitValue(), out);
    }

    private static String cp(Path... parts) {
        return String.join(java.io.File.pathSeparator, Arrays.stream(parts).map(Path::toString).toList());
    }

    @Test
    void freshJvmLoadsTheCopyBundledInTheJar() throws Exception {
        Path empty = Files.createDirectories(work.resolve("empty"));
        Run run = java(cp(jar, mainClasses), "-Djava.library.path=" + empty);
        assertEquals(0, run.exit(), run.output());
        String expected = "loaded from: bundled /native/" + org.tbsecrets.internal.NativeLoader.platform() + "/"
                + System.mapLibraryName("tbsecrets");
        assertTrue(run.output().contains(expected), run.output());
        assertTrue(!run.output().toLowerCase().contains("warning"), run.output());
    }

    @Test
    void systemPropertyComesFirst() throws Exception {
        Run run = java(cp(jar, mainClasses), "-Dtbsecrets.native.path=" + library);
        assertEquals(0, run.exit(), run.output());
        assertTrue(run.output().contains("loaded from: tbsecrets.native.path " + library), run.output());

        Run dir = java(cp(classesOnly, mainClasses), "-Dtbsecrets.native.path=" + library.getParent());
        assertEquals(0, dir.exit(), dir.output());
    }

    @Test
    void javaLibraryPathIsUsedWhenTheJarBundlesNothing() throws Exception {
        Run run = java(cp(classesOnly, mainClasses), "-Djava.library.path=" + library.getParent());
        assertEquals(0, run.exit(), run.output());
        assertTrue(run.output().contains("loaded from: java.library.path"), run.output());
    }

    @Test
    void aLibraryOnJavaLibraryPathIsNotPickedWhenTheJarBundlesOne() throws Exception {
        // A loadable libtbsecrets.so first on java.library.path: the jar's own copy still wins.
        Run run = java(cp(jar, mainClasses), "-Djava.library.path=" + library.getParent());
        assertEquals(0, run.exit(), run.output());
        String expected = "loaded from: bundled /native/" + org.tbsecrets.internal.NativeLoader.platform() + "/"
                + System.mapLibraryName("tbsecrets");
        assertTrue(run.output().contains(expected), run.output());
    }

    @Test
    void anUnrelatedLibraryOnJavaLibraryPathIsNeverLoaded() throws Exception {
        // A file of that name which is no library at all: loading it would fail the JVM's load.
        Path impostor = Files.createDirectories(work.resolve("impostor"));
        Files.writeString(impostor.resolve(System.mapLibraryName("tbsecrets")), "not a shared library");
        Run run = java(cp(jar, mainClasses), "-Djava.library.path=" + impostor);
        assertEquals(0, run.exit(), run.output());
        assertTrue(run.output().contains("loaded from: bundled /native/"), run.output());
        assertTrue(!run.output().contains("java.library.path"), run.output());
    }

    @Test
    void failureListsEveryPlaceTried() throws Exception {
        Path empty = Files.createDirectories(work.resolve("empty2"));
        Run run = java(cp(classesOnly, mainClasses),
                "-Djava.library.path=" + empty, "-Dtbsecrets.native.path=" + empty.resolve("nope.so"));
        assertNotEquals(0, run.exit());
        String out = run.output();
        assertTrue(out.contains("UnsatisfiedLinkError: cannot load the tbsecrets native library"), out);
        assertTrue(out.contains("system property tbsecrets.native.path = " + empty.resolve("nope.so")), out);
        assertTrue(out.contains("java.library.path (" + empty + ")"), out);
        assertTrue(out.contains("bundled /native/"), out);
    }
}
