package io.criu4j;

import static org.assertj.core.api.Assertions.assertThat;

import io.criu4j.testing.FakeCriu;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Base of the tests that drive {@link Criu} against a {@link FakeCriu}: a fresh fake and images
 * directory per test, a client pointed at the fake, and the {@link NoLeaks} check around every
 * test. After each test the fake must have used every script it was given and hit no bug of its
 * own.
 *
 * <p>Every fake CRIU process is a JVM (~0.5 s), and each client probes the version once, so
 * tests use one client and as few operations as they need.
 */
@ExtendWith(NoLeaks.class)
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
abstract class FakeCriuFixture {
  /** Reply timeout of clients in tests that may hang: long enough for a fake JVM to start. */
  static final Duration SHORT_TIMEOUT = Duration.ofSeconds(3);

  @TempDir Path images;
  FakeCriu fake;
  Criu criu;

  @BeforeEach
  void startFakeCriu() {
    fake = FakeCriu.start();
    criu = client().build();
  }

  @AfterEach
  void stopFakeCriu() {
    try {
      assertThat(fake.errors()).as("failures inside the fake").isEmpty();
      assertThat(fake.pendingScripts()).as("scripts the client never asked for").isZero();
    } finally {
      fake.close();
    }
  }

  /** A client builder pointed at the fake, with a reply timeout that never trips by itself. */
  Criu.Builder client() {
    return Criu.builder().binary(fake.binary()).timeout(Duration.ofSeconds(30));
  }
}
