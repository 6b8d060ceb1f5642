package io.criu4j.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.criu4j.CriuOptions;
import io.criu4j.MigrationPhase;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import picocli.CommandLine.TypeConversionException;

class ConvertersTest {
  @Test
  void sizesArePowersOf1024WithOptionalSuffix() {
    assertThat(Converters.parseSize("4096")).isEqualTo(4096);
    assertThat(Converters.parseSize("64k")).isEqualTo(64L << 10);
    assertThat(Converters.parseSize("256M")).isEqualTo(256L << 20);
    assertThat(Converters.parseSize("256MiB")).isEqualTo(256L << 20);
    assertThat(Converters.parseSize("2GB")).isEqualTo(2L << 30);
    assertThat(Converters.parseSize("1T")).isEqualTo(1L << 40);
  }

  @Test
  void badSizesNameTheValue() {
    assertThatThrownBy(() -> Converters.parseSize("-1M")).isInstanceOf(
        TypeConversionException.class).hasMessageContaining("'-1M'");
    assertThatThrownBy(() -> Converters.parseSize("1X")).hasMessageContaining("'1X'");
    assertThatThrownBy(() -> Converters.parseSize("99999999999T"))
        .hasMessageContaining("too large");
  }

  @Test
  void durationsTakeUnitsOrIso8601() {
    assertThat(Converters.parseDuration("500ms")).isEqualTo(Duration.ofMillis(500));
    assertThat(Converters.parseDuration("30s")).isEqualTo(Duration.ofSeconds(30));
    assertThat(Converters.parseDuration("1.5s")).isEqualTo(Duration.ofMillis(1500));
    assertThat(Converters.parseDuration("5m")).isEqualTo(Duration.ofMinutes(5));
    assertThat(Converters.parseDuration("2min")).isEqualTo(Duration.ofMinutes(2));
    assertThat(Converters.parseDuration("1h")).isEqualTo(Duration.ofHours(1));
    assertThat(Converters.parseDuration("PT2M")).isEqualTo(Duration.ofMinutes(2));
    assertThatThrownBy(() -> Converters.parseDuration("0s")).hasMessageContaining("positive");
    assertThatThrownBy(() -> Converters.parseDuration("10 parsecs"))
        .hasMessageContaining("'10 parsecs'");
  }

  @Test
  void phaseTimeoutsAcceptDashesUnderscoresAndAnyCase() {
    assertThat(Converters.parsePhaseTimeout("final-dump=2m"))
        .isEqualTo(Map.entry(MigrationPhase.FINAL_DUMP, Duration.ofMinutes(2)));
    assertThat(Converters.parsePhaseTimeout("PRE_COPY=10s"))
        .isEqualTo(Map.entry(MigrationPhase.PRE_COPY, Duration.ofSeconds(10)));
    assertThatThrownBy(() -> Converters.parsePhaseTimeout("=5s"))
        .hasMessageContaining("PHASE=DURATION");
    assertThatThrownBy(() -> Converters.parsePhaseTimeout("dump=5s"))
        .hasMessageContaining("unknown phase 'dump'").hasMessageContaining("final-dump");
  }

  @Test
  void enumsAreCaseInsensitiveAndListTheChoices() {
    assertThat(Converters.enumValue(CriuOptions.CgroupMode.class, "Strict"))
        .isEqualTo(CriuOptions.CgroupMode.STRICT);
    assertThatThrownBy(() -> Converters.enumValue(CriuOptions.NetworkLockMethod.class, "ufw"))
        .hasMessageContaining("'ufw' is not one of iptables, nftables, skip");
  }
}
