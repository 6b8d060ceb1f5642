package io.criu4j;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.criu4j.CriuOptions.CgroupRoot;
import io.criu4j.CriuOptions.InheritedFd;
import io.criu4j.CriuOptions.JoinNamespace;
import io.criu4j.CriuOptions.PageServerTarget;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** {@link CriuOptions}: an immutable value with a builder, refusing bad values by name. */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class CriuOptionsTest {
  private static List<Method> accessors() {
    Set<String> notOptions = Set.of("toBuilder", "hashCode", "toString");
    List<Method> result = new ArrayList<>();
    for (Method m : CriuOptions.class.getDeclaredMethods()) {
      if (Modifier.isPublic(m.getModifiers()) && !Modifier.isStatic(m.getModifiers())
          && m.getParameterCount() == 0 && !notOptions.contains(m.getName())) {
        result.add(m);
      }
    }
    return result;
  }

  @Test
  void everyOptionIsCoveredByTheFullySetFixture() throws Exception {
    CriuOptions full = OptionsFixtures.everythingSet();
    List<String> unset = new ArrayList<>();
    for (Method m : accessors()) {
      if (Objects.equals(m.invoke(full), m.invoke(CriuOptions.DEFAULTS))) {
        unset.add(m.getName());
      }
    }
    assertThat(accessors()).hasSizeGreaterThan(50);
    assertThat(unset).as("options left at their default by everythingSet()").isEmpty();
  }

  @Test
  void toBuilderRoundTripGivesAnEqualValue() {
    CriuOptions full = OptionsFixtures.everythingSet();

    CriuOptions copy = full.toBuilder().build();

    assertThat(copy).isEqualTo(full).hasSameHashCodeAs(full);
    assertThat(copy.toString()).isEqualTo(full.toString());
    assertThat(CriuOptions.DEFAULTS.toBuilder().build()).isEqualTo(CriuOptions.DEFAULTS);
  }

  @Test
  void everySingleOptionTakesPartInEquality() throws Exception {
    CriuOptions full = OptionsFixtures.everythingSet();
    for (Method m : accessors()) {
      // Changing one option back to its default must make the values differ.
      CriuOptions.Builder b = full.toBuilder();
      Object defaultValue = m.invoke(CriuOptions.DEFAULTS);
      Method setter = Arrays.stream(CriuOptions.Builder.class.getMethods())
          .filter(s -> s.getName().equals(m.getName()) && s.getParameterCount() == 1
              && s.getParameterTypes()[0].isAssignableFrom(m.getReturnType()))
          .findFirst().orElseThrow(() -> new AssertionError("no setter for " + m.getName()));
      setter.invoke(b, defaultValue);
      assertThat(b.build()).as(m.getName()).isNotEqualTo(full);
    }
  }

  @Test
  void toStringListsOnlyTheOptionsThatAreSet() {
    assertThat(CriuOptions.DEFAULTS).hasToString("CriuOptions{}");
    assertThat(CriuOptions.builder().pid(7).leaveRunning(true).build())
        .hasToString("CriuOptions{pid=7, leaveRunning=true}");
    String full = OptionsFixtures.everythingSet().toString();
    for (Method m : accessors()) {
      assertThat(full).contains(m.getName() + "=");
    }
  }

  @Test
  void valuesAreCopiedInAndCannotBeChangedOut() {
    List<String> command = new ArrayList<>(List.of("/bin/true"));
    CriuOptions.Builder builder = CriuOptions.builder().execCommand(command);
    CriuOptions options = builder.build();

    command.add("changed");
    builder.addExternal("added later");

    assertThat(options.execCommand()).containsExactly("/bin/true");
    assertThat(options.externals()).isEmpty();
    assertThatThrownBy(() -> options.execCommand().add("x"))
        .isInstanceOf(UnsupportedOperationException.class);
    assertThatThrownBy(() -> options.externalMounts().put("a", "b"))
        .isInstanceOf(UnsupportedOperationException.class);
  }

  @Test
  void outOfRangeNumbersAreRefusedNamingTheValue() {
    assertThatThrownBy(() -> CriuOptions.builder().pid(-1))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContainingAll("pid", "-1");
    assertThatThrownBy(() -> CriuOptions.builder().freezeTimeoutSeconds(-5))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContainingAll("freezeTimeoutSeconds", "-5");
    assertThatThrownBy(() -> CriuOptions.builder().ghostLimit(-2))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContainingAll("ghostLimit", "-2");
    assertThatThrownBy(() -> CriuOptions.builder().ghostLimit(1L << 32))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("4294967296");
    assertThatThrownBy(() -> CriuOptions.builder().emptyNamespaces(-1))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("-1");
    assertThatThrownBy(() -> new InheritedFd("pipe:[1]", -1))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("-1");
    assertThatThrownBy(() -> PageServerTarget.port(70_000))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("70000");
    assertThatThrownBy(() -> PageServerTarget.address("10.0.0.2", -1))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("-1");
    assertThatThrownBy(() -> PageServerTarget.fd(-1))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("-1");
  }

  @Test
  void nullsAreRefusedNamingTheOption() {
    assertThatThrownBy(() -> CriuOptions.builder().execCommand((List<String>) null))
        .isInstanceOf(NullPointerException.class).hasMessageContaining("execCommand");
    assertThatThrownBy(() -> CriuOptions.builder().externals(null))
        .isInstanceOf(NullPointerException.class).hasMessageContaining("externals");
    assertThatThrownBy(() -> CriuOptions.builder().addExternal(null))
        .isInstanceOf(NullPointerException.class).hasMessageContaining("externals");
    assertThatThrownBy(() -> CriuOptions.builder().inheritedFds(null))
        .isInstanceOf(NullPointerException.class).hasMessageContaining("inheritedFds");
    assertThatThrownBy(() -> CriuOptions.builder().externalMounts(null))
        .isInstanceOf(NullPointerException.class).hasMessageContaining("externalMounts");
    assertThatThrownBy(() -> CriuOptions.builder().cgroupRoots(null))
        .isInstanceOf(NullPointerException.class).hasMessageContaining("cgroupRoots");
    assertThatThrownBy(() -> new InheritedFd(null, 3))
        .isInstanceOf(NullPointerException.class).hasMessageContaining("key");
    assertThatThrownBy(() -> new JoinNamespace("net", null, null))
        .isInstanceOf(NullPointerException.class).hasMessageContaining("file");
    assertThatThrownBy(() -> new CgroupRoot("cpu", null))
        .isInstanceOf(NullPointerException.class).hasMessageContaining("path");
    assertThatThrownBy(() -> PageServerTarget.address(null, 1))
        .isInstanceOf(NullPointerException.class).hasMessageContaining("address");
  }

  @Test
  void pageServerTargetIsAnAddressOrADescriptor() {
    assertThat(PageServerTarget.port(0).hasFd()).isFalse();
    assertThat(PageServerTarget.address("10.0.0.2", 27000))
        .isEqualTo(new PageServerTarget("10.0.0.2", 27000, -1));
    assertThat(PageServerTarget.fd(9).hasFd()).isTrue();
    assertThat(PageServerTarget.fd(9).fd()).isEqualTo(9);
  }
}
