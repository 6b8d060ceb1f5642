package io.criu4j;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.criu4j.testing.FakeCriu;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/** Configuring a {@link Criu} client: which binary it runs, and misuse of its builder. */
@ExtendWith(NoLeaks.class)
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class CriuBuilderTest {
  @TempDir Path dir;
  private String savedProperty;

  @BeforeEach
  void saveProperty() {
    savedProperty = System.getProperty(Criu.BINARY_PROPERTY);
  }

  @AfterEach
  void restoreProperty() {
    if (savedProperty == null) {
      System.clearProperty(Criu.BINARY_PROPERTY);
    } else {
      System.setProperty(Criu.BINARY_PROPERTY, savedProperty);
    }
  }

  @Test
  void systemPropertyNamesTheBinaryWhenTheBuilderDoesNot() throws Exception {
    try (FakeCriu fake = FakeCriu.start()) {
      System.setProperty("criu4j.criu", fake.binary().toString());
      Criu criu = Criu.builder().timeout(Duration.ofSeconds(30)).build();

      assertThat(criu.binary()).isEqualTo(fake.binary());
      assertThat(criu.version()).isEqualTo(CriuVersion.of(4, 1, 1));
      assertThat(fake.takeRequest().type()).isEqualTo("VERSION");
    }
  }

  @Test
  void builderBinaryWinsOverTheSystemProperty() throws Exception {
    Path builderCriu = executable("criu");
    System.setProperty(Criu.BINARY_PROPERTY, dir.resolve("elsewhere").toString());

    assertThat(Criu.builder().binary(builderCriu).build().binary()).isEqualTo(builderCriu);
  }

  @Test
  void systemPropertyNamingAMissingFileIsReportedWithItsSource() {
    Path missing = dir.resolve("no-such-criu");
    System.setProperty(Criu.BINARY_PROPERTY, missing.toString());

    assertThatThrownBy(() -> Criu.create().version())
        .isInstanceOf(MigrationException.class)
        .hasMessageContainingAll(missing.toString(), "system property criu4j.criu");
  }

  @Test
  void missingBinaryIsAMigrationExceptionNamingIt() {
    Path missing = dir.resolve("no-such-criu");

    MigrationException e = catchThrowableOfType(MigrationException.class,
        () -> Criu.builder().binary(missing).build().version());

    assertThat(e).hasMessageContainingAll(missing.toString(), "does not exist");
    assertThat(e.errnoName()).isEqualTo("ENOENT");
  }

  @Test
  void nonExecutableBinaryIsAMigrationExceptionNamingIt() throws Exception {
    Path plain = Files.writeString(dir.resolve("criu"), "#!/bin/sh\n");

    MigrationException e = catchThrowableOfType(MigrationException.class,
        () -> Criu.builder().binary(plain).build().check());

    assertThat(e).hasMessageContainingAll(plain.toString(), "not an executable file");
    assertThat(e.errnoName()).isEqualTo("EACCES");
    assertThatThrownBy(() -> Criu.builder().binary(dir).build().version())
        .isInstanceOf(MigrationException.class)
        .hasMessageContainingAll(dir.toString(), "not an executable file");
  }

  @Test
  void misuseOfTheBuilderIsRefusedNamingTheValue() {
    assertThatThrownBy(() -> Criu.builder().logLevel(5))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("5");
    assertThatThrownBy(() -> Criu.builder().logLevel(-1))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("-1");
    assertThatThrownBy(() -> Criu.builder().logFileName("logs/dump.log"))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("logs/dump.log");
    assertThatThrownBy(() -> Criu.builder().logFileName(""))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> Criu.builder().timeout(Duration.ofSeconds(-1)))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("PT-1S");
    assertThatThrownBy(() -> Criu.builder().binary(null))
        .isInstanceOf(NullPointerException.class).hasMessageContaining("binary");
    assertThatThrownBy(() -> Criu.builder().timeout(null))
        .isInstanceOf(NullPointerException.class).hasMessageContaining("timeout");
  }

  private Path executable(String name) throws Exception {
    Path file = Files.writeString(dir.resolve(name), "#!/bin/sh\n");
    Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwx------"));
    return file;
  }
}
