package io.criu4j.internal.criu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.criu4j.CriuOptions;
import io.criu4j.CriuOptions.CgroupMode;
import io.criu4j.CriuOptions.CgroupRoot;
import io.criu4j.CriuOptions.InheritedFd;
import io.criu4j.CriuOptions.JoinNamespace;
import io.criu4j.CriuOptions.NetworkLockMethod;
import io.criu4j.CriuOptions.PageServerTarget;
import io.criu4j.CriuOptions.PreDumpMode;
import io.criu4j.CriuVersion;
import io.criu4j.OptionsFixtures;
import io.criu4j.internal.rpc.CriuRpc;
import io.criu4j.internal.rpc.CriuRpc.Options;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** {@link OptionsMapper}: every group of {@link CriuOptions} into CRIU's {@code criu_opts}. */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class OptionsMapperTest {
  private static final CriuVersion CRIU_4_1 = CriuVersion.of(4, 1, 1);

  private static Options map(CriuOptions options) {
    return new OptionsMapper(CRIU_4_1).map(options, 7).build();
  }

  private static CriuOptions.Builder options() {
    return CriuOptions.builder();
  }

  @Test
  void defaultsSendNothingButTheImagesDirectory() {
    Options o = map(CriuOptions.DEFAULTS);

    assertThat(o.getAllFields().keySet().stream().map(f -> f.getName())
        .collect(Collectors.toList())).containsExactly("images_dir_fd");
    assertThat(o.getImagesDirFd()).isEqualTo(7);
    assertThat(new OptionsMapper(CRIU_4_1).map(CriuOptions.DEFAULTS, -1).build()
        .getImagesDirFd()).isEqualTo(-1);
  }

  @Test
  void mapsTreeAndStateOptions() {
    Options o = map(options().pid(4242).leaveRunning(true).leaveStopped(true).shellJob(true)
        .restoreSibling(true).execCommand("/bin/echo", "hi").freezeTimeoutSeconds(30)
        .freezeCgroup("/sys/fs/cgroup/app").orphanPtsMaster(true).unprivileged(true).build());

    assertThat(o.getPid()).isEqualTo(4242);
    assertThat(o.getLeaveRunning()).isTrue();
    assertThat(o.getLeaveStopped()).isTrue();
    assertThat(o.getShellJob()).isTrue();
    assertThat(o.getRstSibling()).isTrue();
    assertThat(o.getExecCmdList()).containsExactly("/bin/echo", "hi");
    assertThat(o.getTimeout()).isEqualTo(30);
    assertThat(o.getFreezeCgroup()).isEqualTo("/sys/fs/cgroup/app");
    assertThat(o.getOrphanPtsMaster()).isTrue();
    assertThat(o.getUnprivileged()).isTrue();
  }

  @Test
  void mapsFilesAndSocketsOptions() {
    Options o = map(options().externalUnixSockets(true).tcpEstablished(true)
        .tcpSkipInFlight(true).tcpClose(true).evasiveDevices(true).fileLocks(true)
        .linkRemap(true).ghostLimit(0xffffffffL).forceIrmap(true).addIrmapScanPath("/etc")
        .addExternal("mnt[/data]:data").addExternal("unix[123]").skipFileRwxCheck(true).build());

    assertThat(o.getExtUnixSk()).isTrue();
    assertThat(o.getTcpEstablished()).isTrue();
    assertThat(o.getTcpSkipInFlight()).isTrue();
    assertThat(o.getTcpClose()).isTrue();
    assertThat(o.getEvasiveDevices()).isTrue();
    assertThat(o.getFileLocks()).isTrue();
    assertThat(o.getLinkRemap()).isTrue();
    assertThat(Integer.toUnsignedLong(o.getGhostLimit())).as("uint32").isEqualTo(0xffffffffL);
    assertThat(o.getForceIrmap()).isTrue();
    assertThat(o.getIrmapScanPathsList()).containsExactly("/etc");
    assertThat(o.getExternalList()).containsExactly("mnt[/data]:data", "unix[123]");
    assertThat(o.getSkipFileRwxCheck()).isTrue();
    assertThat(map(options().ghostLimit(0).build()).hasGhostLimit()).as("0 is a value").isTrue();
  }

  @Test
  void mapsMountOptions() {
    Options o = map(options().root("/srv/root").autoExternalMounts(true).externalSharing(true)
        .externalMasters(true).addSkipMount("/proc/sys").addEnableFilesystem("hugetlbfs")
        .externalMounts(Map.of("/data", "data")).mountNamespaceCompatMode(true)
        .lsmProfile("apparmor:unconfined").lsmMountContext("system_u:object_r:tmp_t:s0").build());

    assertThat(o.getRoot()).isEqualTo("/srv/root");
    assertThat(o.getAutoExtMnt()).isTrue();
    assertThat(o.getExtSharing()).isTrue();
    assertThat(o.getExtMasters()).isTrue();
    assertThat(o.getSkipMntList()).containsExactly("/proc/sys");
    assertThat(o.getEnableFsList()).containsExactly("hugetlbfs");
    assertThat(o.getExtMnt(0).getKey()).isEqualTo("/data");
    assertThat(o.getExtMnt(0).getVal()).isEqualTo("data");
    assertThat(o.getMntnsCompatMode()).isTrue();
    assertThat(o.getLsmProfile()).isEqualTo("apparmor:unconfined");
    assertThat(o.getLsmMountContext()).isEqualTo("system_u:object_r:tmp_t:s0");
  }

  @Test
  void mapsNamespaceAndNetworkOptions() {
    Options o = map(options().emptyNamespaces(0x40000000)
        .addJoinNamespace(new JoinNamespace("net", "/run/netns/a", null))
        .addJoinNamespace(new JoinNamespace("uts", "/proc/1/ns/uts", "host"))
        .weakSysctls(true).networkLock(NetworkLockMethod.NFTABLES).build());

    assertThat(o.getEmptyNs()).isEqualTo(0x40000000);
    assertThat(o.getJoinNs(0).getNs()).isEqualTo("net");
    assertThat(o.getJoinNs(0).getNsFile()).isEqualTo("/run/netns/a");
    assertThat(o.getJoinNs(0).hasExtraOpt()).isFalse();
    assertThat(o.getJoinNs(1).getExtraOpt()).isEqualTo("host");
    assertThat(o.getWeakSysctls()).isTrue();
    assertThat(o.getNetworkLock()).isEqualTo(CriuRpc.NetworkLockMethod.NFTABLES);
    assertThat(map(options().networkLock(NetworkLockMethod.SKIP).build()).getNetworkLock())
        .isEqualTo(CriuRpc.NetworkLockMethod.SKIP);
  }

  @ParameterizedTest(name = "{0} -> {1}")
  @CsvSource({"IGNORE, IGNORE", "NONE, CG_NONE", "PROPS, PROPS", "SOFT, SOFT", "FULL, FULL",
      "STRICT, STRICT", "DEFAULT, DEFAULT"})
  void mapsCgroupModes(CgroupMode mode, CriuRpc.CgroupMode expected) {
    Options o = map(options().manageCgroups(mode).build());

    assertThat(o.getManageCgroups()).isTrue();
    assertThat(o.getManageCgroupsMode()).isEqualTo(expected);
  }

  @Test
  void mapsCgroupOptions() {
    Options o = map(options().addCgroupRoot(new CgroupRoot("cpu", "/app"))
        .addCgroupRoot(new CgroupRoot(null, "/all")).cgroupProperties("props")
        .cgroupPropertiesFile("/etc/props.yaml").addCgroupDumpController("memory")
        .cgroupYard("/run/yard").build());

    assertThat(o.hasManageCgroups()).as("mode unset: CRIU's default").isFalse();
    assertThat(o.getCgRoot(0).getCtrl()).isEqualTo("cpu");
    assertThat(o.getCgRoot(0).getPath()).isEqualTo("/app");
    assertThat(o.getCgRoot(1).hasCtrl()).isFalse();
    assertThat(o.getCgroupProps()).isEqualTo("props");
    assertThat(o.getCgroupPropsFile()).isEqualTo("/etc/props.yaml");
    assertThat(o.getCgroupDumpControllerList()).containsExactly("memory");
    assertThat(o.getCgroupYard()).isEqualTo("/run/yard");
  }

  @Test
  void mapsMemoryAndMigrationOptions() {
    Options o = map(options().pageServer(PageServerTarget.address("10.0.0.2", 27000))
        .parentImages("../1").trackMemory(true).autoDedup(true).lazyPages(true)
        .preDumpMode(PreDumpMode.READ).cpuCapabilities(1).build());

    assertThat(o.getPs().getAddress()).isEqualTo("10.0.0.2");
    assertThat(o.getPs().getPort()).isEqualTo(27000);
    assertThat(o.getPs().hasFd()).isFalse();
    assertThat(o.getParentImg()).isEqualTo("../1");
    assertThat(o.getTrackMem()).isTrue();
    assertThat(o.getAutoDedup()).isTrue();
    assertThat(o.getLazyPages()).isTrue();
    assertThat(o.getPreDumpMode()).isEqualTo(CriuRpc.PreDumpMode.VM_READ);
    assertThat(o.getCpuCap()).isEqualTo(1);
    assertThat(map(options().preDumpMode(PreDumpMode.SPLICE).build()).getPreDumpMode())
        .isEqualTo(CriuRpc.PreDumpMode.SPLICE);
    assertThat(map(options().preDumpMode(PreDumpMode.SPLICE).build()).hasPreDumpMode())
        .as("set explicitly, sent explicitly").isTrue();
    Options portOnly = map(options().pageServer(PageServerTarget.port(0)).build());
    assertThat(portOnly.getPs().hasAddress()).isFalse();
    assertThat(portOnly.getPs().hasPort()).isTrue();
  }

  @Test
  void mapsTlsAndConfigOptions() {
    Options o = map(options().tls(true).tlsCaCertificate("ca.pem").tlsCaRevocationList("crl.pem")
        .tlsCertificate("cert.pem").tlsKey("key.pem").tlsNoCnVerify(true)
        .configFile("/etc/criu/rpc.conf").build());

    assertThat(o.getTls()).isTrue();
    assertThat(o.getTlsCacert()).isEqualTo("ca.pem");
    assertThat(o.getTlsCacrl()).isEqualTo("crl.pem");
    assertThat(o.getTlsCert()).isEqualTo("cert.pem");
    assertThat(o.getTlsKey()).isEqualTo("key.pem");
    assertThat(o.getTlsNoCnVerify()).isTrue();
    assertThat(o.getConfigFile()).isEqualTo("/etc/criu/rpc.conf");
  }

  @Test
  void descriptorsAreHandedToTheChildInOrderAndTheMessageCarriesTheChildsNumbers() {
    OptionsMapper mapper = new OptionsMapper(CRIU_4_1);

    Options o = mapper.map(options().addInheritedFd(new InheritedFd("pipe:[1]", 40))
        .addInheritedFd(new InheritedFd("file[2]", 41)).pageServer(PageServerTarget.fd(42))
        .build(), 7).build();

    assertThat(mapper.childFds()).containsExactly(40, 41, 42);
    assertThat(o.getInheritFd(0).getKey()).isEqualTo("pipe:[1]");
    assertThat(o.getInheritFd(0).getFd()).isEqualTo(4);
    assertThat(o.getInheritFd(1).getFd()).isEqualTo(5);
    assertThat(o.getPs().getFd()).isEqualTo(6);
    assertThat(o.getPs().hasPort()).isFalse();
    assertThat(SwrkConnection.childFd(0)).isEqualTo(4);
  }

  @Test
  void optionsNewerThanTheRunningCriuAreRefusedNamingOptionAndVersions() {
    OptionsMapper criu318 = new OptionsMapper(CriuVersion.of(3, 18, 0));
    OptionsMapper criu317 = new OptionsMapper(CriuVersion.of(3, 17, 0));

    assertThatThrownBy(() -> criu318.map(options().leaveStopped(true).build(), 7))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("option leaveStopped needs CRIU >= 3.19; running 3.18");
    assertThatThrownBy(() -> criu318.map(options().networkLock(NetworkLockMethod.SKIP)
        .build(), 7)).isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("networkLock(SKIP)");
    assertThatThrownBy(() -> criu317.map(options().unprivileged(true).build(), 7))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("unprivileged");
    assertThatThrownBy(() -> criu317.map(options().skipFileRwxCheck(true).build(), 7))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("skipFileRwxCheck");
    assertThat(criu318.map(options().networkLock(NetworkLockMethod.NFTABLES).unprivileged(true)
        .build(), 7).build().getUnprivileged()).isTrue();
  }

  @Test
  void unknownVersionRefusesNothing() {
    Options o = new OptionsMapper(null).map(options().leaveStopped(true).build(), 7).build();

    assertThat(o.getLeaveStopped()).isTrue();
  }

  @Test
  void mapsEveryOptionOfAFullySetValueWithoutComplaint() {
    // The fixture of CriuOptionsTest sets every option; mapping it must not throw and must
    // send something for each group.
    Options o = new OptionsMapper(CRIU_4_1).map(OptionsFixtures.everythingSet(), 7)
        .build();

    assertThat(o.getAllFields()).hasSizeGreaterThan(50);
    assertThat(List.of(o.getPid(), o.getEmptyNs())).containsExactly(4242, 0x40000000);
  }
}
