package io.criu4j.testing;

import io.criu4j.Criu;
import io.criu4j.CriuVersion;
import io.criu4j.MigrationException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.List;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolver;

/**
 * Gates tests that need a working CRIU: Linux, running as root, and {@code Criu.create().check()}
 * succeeding. Where that does not hold, the tests are skipped (a JUnit assumption) with the
 * reason, such as {@code "no usable CRIU: criu not found on PATH ..."}; with the system property
 * {@value #REQUIRED_PROPERTY}{@code =true} (CI) they fail with the reason instead.
 *
 * <p>Use as an extension, {@code @ExtendWith(RealCriu.class)}, which checks before each test (so
 * every test is reported as skipped with the reason) and injects a {@link Criu} into test and
 * lifecycle method parameters; or call {@link #require()} from anywhere. The probe runs once per
 * JVM. Thread-safe.
 */
public final class RealCriu implements BeforeEachCallback, ParameterResolver {
  /** System property that turns "no usable CRIU" from a skip into a failure. */
  public static final String REQUIRED_PROPERTY = "criu.required";

  private static volatile Probe probe;

  /** What the probe found: a usable client, or why there is none. */
  private record Probe(Criu criu, CriuVersion version, String problem) {}

  /**
   * A client for the usable CRIU; skips or fails the calling test (see the class comment) if
   * there is none.
   */
  public static Criu require() {
    Probe p = probe();
    if (p.problem() != null) {
      String reason = "no usable CRIU: " + p.problem();
      if (Boolean.getBoolean(REQUIRED_PROPERTY)) {
        Assertions.fail(reason + " (-D" + REQUIRED_PROPERTY + "=true)");
      }
      Assumptions.abort(reason);
    }
    return p.criu();
  }

  /** Whether a usable CRIU was found, without skipping or failing anything. */
  public static boolean isUsable() {
    return probe().problem() == null;
  }

  /** Why CRIU is not usable, or {@code null} if it is. */
  public static String problem() {
    return probe().problem();
  }

  /** The usable CRIU's version, or {@code null}. */
  public static CriuVersion version() {
    return probe().version();
  }

  private static Probe probe() {
    Probe p = probe;
    if (p == null) {
      synchronized (RealCriu.class) {
        p = probe;
        if (p == null) {
          p = runProbe();
          probe = p;
        }
      }
    }
    return p;
  }

  private static Probe runProbe() {
    String os = System.getProperty("os.name", "");
    if (!os.toLowerCase(java.util.Locale.ROOT).startsWith("linux")) {
      return new Probe(null, null, "CRIU runs on Linux only (os.name=" + os + ")");
    }
    int euid = effectiveUid();
    if (euid != 0) {
      return new Probe(null, null, "not running as root (euid " + euid + ")");
    }
    Criu criu = Criu.create();
    try {
      CriuVersion version = criu.version();
      criu.check();
      return new Probe(criu, version, null);
    } catch (MigrationException | RuntimeException e) {
      String msg = String.valueOf(e.getMessage());
      return new Probe(null, null, msg.lines().findFirst().orElse(msg));
    }
  }

  /** The effective uid from {@code /proc/self/status}, or -1 if unknown. */
  private static int effectiveUid() {
    try {
      List<String> lines = Files.readAllLines(Paths.get("/proc/self/status"));
      for (String line : lines) {
        if (line.startsWith("Uid:")) {
          return Integer.parseInt(line.substring(4).trim().split("\\s+")[1]);
        }
      }
    } catch (IOException | RuntimeException e) {
      // fall through
    }
    return -1;
  }

  @Override
  public void beforeEach(ExtensionContext context) {
    require();
  }

  @Override
  public boolean supportsParameter(ParameterContext parameterContext,
      ExtensionContext extensionContext) {
    return parameterContext.getParameter().getType() == Criu.class;
  }

  @Override
  public Object resolveParameter(ParameterContext parameterContext,
      ExtensionContext extensionContext) {
    return require();
  }
}
