package io.criu4j;

import io.criu4j.CriuOptions.CgroupMode;
import io.criu4j.CriuOptions.CgroupRoot;
import io.criu4j.CriuOptions.InheritedFd;
import io.criu4j.CriuOptions.JoinNamespace;
import io.criu4j.CriuOptions.NetworkLockMethod;
import io.criu4j.CriuOptions.PageServerTarget;
import io.criu4j.CriuOptions.PreDumpMode;
import java.nio.file.Path;
import java.util.Map;

/** Shared {@link CriuOptions} values for tests. */
public final class OptionsFixtures {
  private OptionsFixtures() {}

  /** Options with every value different from its default. */
  public static CriuOptions everythingSet() {
    return CriuOptions.builder()
        .pid(4242).leaveRunning(true).leaveStopped(true).shellJob(true).restoreSibling(true)
        .execCommand("/bin/echo", "restored").freezeTimeoutSeconds(30)
        .freezeCgroup("/sys/fs/cgroup/freezer/app").orphanPtsMaster(true).unprivileged(true)
        .externalUnixSockets(true).tcpEstablished(true).tcpSkipInFlight(true).tcpClose(true)
        .evasiveDevices(true).fileLocks(true).linkRemap(true).ghostLimit(1 << 20)
        .forceIrmap(true).addIrmapScanPath("/etc").addInheritedFd(new InheritedFd("pipe:[1]", 5))
        .addExternal("mnt[/data]:data").skipFileRwxCheck(true)
        .root("/srv/root").autoExternalMounts(true).externalSharing(true).externalMasters(true)
        .addSkipMount("/proc/sys").addEnableFilesystem("hugetlbfs")
        .externalMounts(Map.of("/data", "data")).mountNamespaceCompatMode(true)
        .lsmProfile("apparmor:unconfined").lsmMountContext("system_u:object_r:tmp_t:s0")
        .emptyNamespaces(0x40000000)
        .addJoinNamespace(new JoinNamespace("net", "/run/netns/a", null))
        .weakSysctls(true).networkLock(NetworkLockMethod.NFTABLES)
        .manageCgroups(CgroupMode.SOFT).addCgroupRoot(new CgroupRoot("cpu", "/app"))
        .cgroupProperties("props").cgroupPropertiesFile("/etc/props.yaml")
        .addCgroupDumpController("memory").cgroupYard("/run/yard")
        .pageServer(PageServerTarget.address("10.0.0.2", 27000)).parentImages("../1")
        .trackMemory(true).autoDedup(true).lazyPages(true).preDumpMode(PreDumpMode.READ)
        .cpuCapabilities(1)
        .tls(true).tlsCaCertificate("ca.pem").tlsCaRevocationList("crl.pem")
        .tlsCertificate("cert.pem").tlsKey("key.pem").tlsNoCnVerify(true)
        .configFile("/etc/criu/rpc.conf").workDir(Path.of("/var/lib/work"))
        .build();
  }
}
