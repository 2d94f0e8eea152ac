package io.rewardkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.sun.jna.Platform;
import java.io.IOException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NativeLoaderTest {
    private static final String LIB = System.mapLibraryName("rewardkit");
    private static final String DIR = "native/" + Platform.RESOURCE_PREFIX + "/";

    /** The library file the tests were pointed at with -Drewardkit.library.path. */
    private static Path configuredLibrary() {
        String p = System.getProperty(NativeLoader.PROPERTY);
        assumeTrue(p != null && !p.isEmpty(), "-D" + NativeLoader.PROPERTY + " not set");
        Path path = Path.of(p);
        return Files.isDirectory(path) ? path.resolve(LIB) : path;
    }

    @Test
    void versionMatchesTheHeader() {
        assertEquals(Rewardkit.headerVersion(), Rewardkit.version());
    }

    @Test
    void propertyIsTheOnlyPlaceTriedWhenSet(@TempDir Path empty) {
        UnsatisfiedLinkError e = assertThrows(UnsatisfiedLinkError.class,
                () -> NativeLoader.load(empty.toString(), getClass().getClassLoader()));
        assertTrue(e.getMessage().contains(empty.resolve(LIB).toString()), e.getMessage());
        assertTrue(e.getMessage().contains(NativeLoader.PROPERTY), e.getMessage());
    }

    @Test
    void errorListsEveryPlaceTried(@TempDir Path empty) throws IOException {
        String ldPath = System.getenv().getOrDefault("LD_LIBRARY_PATH", "");
        for (String d : ldPath.split(":")) {
            assumeTrue(d.isEmpty() || !Files.exists(Path.of(d, LIB)), "LD_LIBRARY_PATH holds " + LIB);
        }
        String saved = System.getProperty("jna.library.path");
        System.setProperty("jna.library.path", empty.toString());
        try (URLClassLoader nothing = new URLClassLoader(new URL[] {empty.toUri().toURL()}, null)) {
            UnsatisfiedLinkError e = assertThrows(UnsatisfiedLinkError.class, () -> NativeLoader.load(null, nothing));
            String msg = e.getMessage();
            assertTrue(msg.contains(NativeLoader.PROPERTY + ": not set"), msg);
            assertTrue(msg.contains("resource /" + DIR + LIB), msg);
            assertTrue(msg.contains("system path (jna.library.path=" + empty), msg);
        } finally {
            if (saved == null) {
                System.clearProperty("jna.library.path");
            } else {
                System.setProperty("jna.library.path", saved);
            }
        }
    }

    @Test
    void loadsFromAResourceFolder(@TempDir Path root) throws IOException {
        Path lib = configuredLibrary();
        Path dir = Files.createDirectories(root.resolve(DIR));
        Files.copy(lib, dir.resolve(LIB));
        try (URLClassLoader cl = new URLClassLoader(new URL[] {root.toUri().toURL()}, null)) {
            assertEquals(Rewardkit.headerVersion(), NativeLoader.load(null, cl).rk_version());
        }
    }

    @Test
    void loadsFromAJarWithItsNeighbours(@TempDir Path root) throws IOException {
        Path lib = configuredLibrary();
        Path jar = root.resolve("natives.jar");
        try (JarOutputStream out = new JarOutputStream(Files.newOutputStream(jar))) {
            out.setLevel(0);
            putEntry(out, DIR + LIB, lib);
            out.putNextEntry(new JarEntry(DIR + "README.txt"));
            out.write("a file extracted beside the library\n".getBytes(java.nio.charset.StandardCharsets.UTF_8));
            out.closeEntry();
        }
        try (URLClassLoader cl = new URLClassLoader(new URL[] {jar.toUri().toURL()}, null)) {
            assertEquals(Rewardkit.headerVersion(), NativeLoader.load(null, cl).rk_version());
        }
    }

    private static void putEntry(JarOutputStream out, String name, Path file) throws IOException {
        out.putNextEntry(new JarEntry(name));
        Files.copy(file, out);
        out.closeEntry();
    }
}
