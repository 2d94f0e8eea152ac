package io.rewardkit;

import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.Platform;
import io.rewardkit.internal.RewardkitLibrary;
import java.io.IOException;
import java.io.InputStream;
import java.net.JarURLConnection;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.List;
import java.util.Map;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;

/**
 * Finds and loads {@code librewardkit}, trying in order:
 *
 * <ol>
 *   <li>the system property {@value #PROPERTY}: a library file, or a folder
 *       holding it. When set, it is the only place tried;</li>
 *   <li>a copy bundled in the jar under {@code /native/<os>-<arch>/} (for
 *       example {@code /native/linux-x86-64/librewardkit.so}), extracted with
 *       every other file of that folder (such as the ONNX Runtime libraries,
 *       which rewardkit looks for beside itself) into a temporary folder;</li>
 *   <li>the system path through JNA: {@code jna.library.path}, then the
 *       platform's own search ({@code LD_LIBRARY_PATH} and the like).</li>
 * </ol>
 *
 * Strings cross the boundary as UTF-8 whatever the platform's default charset.
 */
final class NativeLoader {
    /** System property naming the library file or its folder. */
    static final String PROPERTY = "rewardkit.library.path";

    private static final String NAME = "rewardkit";
    private static final Map<String, Object> OPTIONS = Map.of(Library.OPTION_STRING_ENCODING, "UTF-8");

    private static RewardkitLibrary library;
    private static String failure;

    private NativeLoader() {}

    /** The loaded library; loads it on first use. Throws {@link UnsatisfiedLinkError} if it cannot. */
    static synchronized RewardkitLibrary library() {
        if (library == null) {
            if (failure == null) {
                try {
                    library = load(System.getProperty(PROPERTY), NativeLoader.class.getClassLoader());
                } catch (UnsatisfiedLinkError e) {
                    failure = e.getMessage();
                }
            }
            if (library == null) {
                throw new UnsatisfiedLinkError(failure);
            }
        }
        return library;
    }

    /** Loads the library from {@code property} if not null, else from {@code resources}, else from the system path. */
    static RewardkitLibrary load(String property, ClassLoader resources) {
        String fileName = System.mapLibraryName(NAME);
        List<String> tried = new ArrayList<>();

        if (property != null && !property.isEmpty()) {
            Path path = Paths.get(property);
            if (Files.isDirectory(path)) {
                path = path.resolve(fileName);
            }
            try {
                return Native.load(path.toAbsolutePath().toString(), RewardkitLibrary.class, OPTIONS);
            } catch (UnsatisfiedLinkError e) {
                throw notFound(List.of("-D" + PROPERTY + "=" + property + " (" + path + "): " + e.getMessage()));
            }
        }
        tried.add("-D" + PROPERTY + ": not set");

        String resourceDir = "native/" + Platform.RESOURCE_PREFIX + "/";
        URL resource = resources.getResource(resourceDir + fileName);
        if (resource == null) {
            tried.add("resource /" + resourceDir + fileName + ": not in the classpath");
        } else {
            try {
                Path extracted = extract(resources, resource, resourceDir, fileName);
                return Native.load(extracted.toString(), RewardkitLibrary.class, OPTIONS);
            } catch (IOException | UnsatisfiedLinkError e) {
                tried.add("resource " + resource + ": " + e.getMessage());
            }
        }

        try {
            return Native.load(NAME, RewardkitLibrary.class, OPTIONS);
        } catch (UnsatisfiedLinkError e) {
            tried.add("system path (jna.library.path=" + System.getProperty("jna.library.path", "")
                    + ", LD_LIBRARY_PATH=" + System.getenv().getOrDefault("LD_LIBRARY_PATH", "")
                    + "): " + e.getMessage());
        }
        throw notFound(tried);
    }

    private static UnsatisfiedLinkError notFound(List<String> tried) {
        StringBuilder msg = new StringBuilder("could not load lib" + NAME + "; tried:");
        for (String t : tried) {
            msg.append("\n  - ").append(t.replace("\n", " "));
        }
        msg.append("\nSet -D").append(PROPERTY).append("=/path/to/").append(System.mapLibraryName(NAME))
                .append(" (or its folder).");
        return new UnsatisfiedLinkError(msg.toString());
    }

    /**
     * Copies the bundled library, and every file beside it in the same resource
     * folder, into a new temporary folder; returns the library's path there.
     */
    private static Path extract(ClassLoader loader, URL library, String resourceDir, String fileName)
            throws IOException {
        Path dir = Files.createTempDirectory("rewardkit-native-");
        dir.toFile().deleteOnExit();
        List<String> names = new ArrayList<>();
        if ("jar".equals(library.getProtocol())) {
            JarURLConnection conn = (JarURLConnection) library.openConnection();
            conn.setUseCaches(false);
            try (JarFile jar = conn.getJarFile()) {
                Enumeration<JarEntry> entries = jar.entries();
                while (entries.hasMoreElements()) {
                    String name = entries.nextElement().getName();
                    String rest = name.startsWith(resourceDir) ? name.substring(resourceDir.length()) : "";
                    if (!rest.isEmpty() && !rest.contains("/")) {
                        names.add(rest);
                    }
                }
            }
        } else if ("file".equals(library.getProtocol())) {
            try (DirectoryStream<Path> files = Files.newDirectoryStream(Paths.get(library.toURI()).getParent())) {
                for (Path f : files) {
                    if (Files.isRegularFile(f)) {
                        names.add(f.getFileName().toString());
                    }
                }
            } catch (URISyntaxException e) {
                throw new IOException("bad resource URL " + library, e);
            }
        } else {
            names.add(fileName);
        }
        for (String name : names) {
            Path target = dir.resolve(name);
            try (InputStream in = loader.getResourceAsStream(resourceDir + name)) {
                if (in == null) {
                    throw new IOException("resource " + resourceDir + name + " vanished");
                }
                Files.copy(in, target, StandardCopyOption.REPLACE_EXISTING);
            }
            target.toFile().deleteOnExit();
        }
        return dir.resolve(fileName);
    }
}
