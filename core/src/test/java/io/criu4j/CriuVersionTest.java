package io.criu4j;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** {@link CriuVersion}: parsing, ordering and printing CRIU versions. */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class CriuVersionTest {

  @Test
  void parsesTwoAndThreePartVersions() {
    assertThat(CriuVersion.parse("4.1.1")).isEqualTo(CriuVersion.of(4, 1, 1));
    assertThat(CriuVersion.parse("3.19")).isEqualTo(CriuVersion.of(3, 19, 0));
    assertThat(CriuVersion.parse(" 4.2\n")).isEqualTo(CriuVersion.of(4, 2, 0));
  }

  @Test
  void refusesTextThatIsNotAVersionNamingIt() {
    for (String bad : List.of("4", "4.x.1", "1.2.3.4", "", "v4.1")) {
      assertThatThrownBy(() -> CriuVersion.parse(bad)).as(bad)
          .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'" + bad + "'");
    }
    assertThatThrownBy(() -> CriuVersion.of(3, -1, 0))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("3.-1.0");
  }

  @Test
  void ordersByMajorMinorAndSublevel() {
    List<CriuVersion> versions = new ArrayList<>(List.of(CriuVersion.of(4, 1, 1),
        CriuVersion.of(3, 17, 1), CriuVersion.of(4, 0, 0), CriuVersion.of(3, 19, 0),
        CriuVersion.of(3, 17, 0), CriuVersion.of(3, 9, 0)));

    Collections.sort(versions);

    assertThat(versions).containsExactly(CriuVersion.of(3, 9, 0), CriuVersion.of(3, 17, 0),
        CriuVersion.of(3, 17, 1), CriuVersion.of(3, 19, 0), CriuVersion.of(4, 0, 0),
        CriuVersion.of(4, 1, 1));
    assertThat(CriuVersion.of(3, 19, 0).isAtLeast(3, 19, 0)).isTrue();
    assertThat(CriuVersion.of(3, 18, 5).isAtLeast(3, 19, 0)).isFalse();
    assertThat(CriuVersion.of(4, 0, 0).isAtLeast(3, 19, 0)).isTrue();
    assertThat(Criu.OLDEST_SUPPORTED).isEqualTo(CriuVersion.of(3, 17, 0));
  }

  @Test
  void printsLikeCriuWithTheGitIdOfDevelopmentBuilds() {
    assertThat(CriuVersion.of(4, 1, 1)).hasToString("4.1.1");
    assertThat(CriuVersion.of(3, 17, 0)).hasToString("3.17");
    assertThat(new CriuVersion(4, 2, 0, 0, "v4.2-7-g1234abc", null))
        .hasToString("4.2 (v4.2-7-g1234abc)");
  }

  @Test
  void equalityIgnoresTheReleaseNameButNotTheGitId() {
    assertThat(new CriuVersion(4, 1, 1, 0, null, "CRIUfy"))
        .isEqualTo(CriuVersion.of(4, 1, 1)).hasSameHashCodeAs(CriuVersion.of(4, 1, 1));
    assertThat(new CriuVersion(4, 1, 1, 0, "abc", null)).isNotEqualTo(CriuVersion.of(4, 1, 1));
  }

  @Test
  void orderingAgreesWithEquality() {
    CriuVersion release = CriuVersion.of(4, 1, 1);
    CriuVersion devBuild = new CriuVersion(4, 1, 1, 0, "v4.1.1-3-gabc", null);
    CriuVersion named = new CriuVersion(4, 1, 1, 0, null, "CRIUfy");

    assertThat(release.compareTo(named)).isZero();
    assertThat(release.compareTo(devBuild)).isNegative();
    assertThat(devBuild.compareTo(release)).isPositive();
    assertThat(new CriuVersion(4, 1, 1, 2, null, null)).isGreaterThan(release);
  }

  @Test
  void pageServerHeaderGrewInCriu42() {
    assertThat(CriuVersion.of(4, 1, 1).pageServerHeaderSize()).isEqualTo(24);
    assertThat(CriuVersion.of(4, 2, 0).pageServerHeaderSize()).isEqualTo(32);
  }
}
