package io.rewardkit;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Test bundles, named by system property or environment variable:
 * {@code rk.test.bundle} / {@code RK_TEST_BUNDLE} (one output),
 * {@code rk.test.bundle5} / {@code RK_TEST_BUNDLE5} (five outputs) and
 * {@code rk.test.broken} / {@code RK_TEST_BROKEN} (a bundle without model.onnx).
 * A missing one skips the test, or fails it when {@code rk.test.require=true}
 * (as test.sh sets, so that a misconfigured run cannot pass by skipping).
 */
final class TestBundles {
    private TestBundles() {}

    static Path bundle() {
        return find("rk.test.bundle", "RK_TEST_BUNDLE");
    }

    static Path bundle5() {
        return find("rk.test.bundle5", "RK_TEST_BUNDLE5");
    }

    static Path broken() {
        return find("rk.test.broken", "RK_TEST_BROKEN");
    }

    private static Path find(String property, String env) {
        String value = System.getProperty(property);
        if (value == null || value.isEmpty()) {
            value = System.getenv(env);
        }
        boolean required = Boolean.getBoolean("rk.test.require");
        if (value == null || value.isEmpty() || !Files.isDirectory(Path.of(value))) {
            String why = "no test bundle: set -D" + property + " or " + env + " to a bundle directory (got " + value + ")";
            if (required) {
                fail(why);
            }
            assumeTrue(false, why);
        }
        return Path.of(value);
    }
}
