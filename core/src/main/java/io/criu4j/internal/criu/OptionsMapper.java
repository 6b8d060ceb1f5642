package io.criu4j.internal.criu;

import io.criu4j.CriuOptions;
import io.criu4j.CriuVersion;
import io.criu4j.internal.rpc.CriuRpc.CgroupMode;
import io.criu4j.internal.rpc.CriuRpc.CgroupRoot;
import io.criu4j.internal.rpc.CriuRpc.ExternalMountMapping;
import io.criu4j.internal.rpc.CriuRpc.InheritFd;
import io.criu4j.internal.rpc.CriuRpc.JoinNamespace;
import io.criu4j.internal.rpc.CriuRpc.NetworkLockMethod;
import io.criu4j.internal.rpc.CriuRpc.Options;
import io.criu4j.internal.rpc.CriuRpc.PageServerInfo;
import io.criu4j.internal.rpc.CriuRpc.PreDumpMode;
import java.util.ArrayList;
import java.util.List;

/**
 * Turns {@link CriuOptions} into the RPC message. Only options that are set are written, and an
 * option the running CRIU does not know is refused here, naming the option and the version it
 * needs. Descriptors the options name (inherited fds, a page-server fd) are collected in
 * {@link #childFds()}, in the order they must be handed to the child, and the message carries
 * the numbers the child will see.
 *
 * <p>Not thread-safe; one instance per request.
 */
public final class OptionsMapper {
  private final CriuVersion version;
  private final List<Integer> childFds = new ArrayList<>();

  public OptionsMapper(CriuVersion version) {
    this.version = version;
  }

  /** Caller's descriptors to pass to the child as fds 4, 5, ... */
  public List<Integer> childFds() {
    return List.copyOf(childFds);
  }

  private int handToChild(int fd) {
    childFds.add(fd);
    return SwrkConnection.childFd(childFds.size() - 1);
  }

  private void need(boolean set, String option, int major, int minor) {
    if (set && version != null && !version.isAtLeast(major, minor, 0)) {
      throw new IllegalArgumentException("option " + option + " needs CRIU >= " + major + "."
          + minor + "; running " + version);
    }
  }

  /** The message for {@code o}, with images dir fd {@code imagesDirFd} (-1 for none). */
  public Options.Builder map(CriuOptions o, int imagesDirFd) {
    Options.Builder b = Options.newBuilder().setImagesDirFd(imagesDirFd);
    if (o.pid() != 0) {
      b.setPid(o.pid());
    }
    if (o.leaveRunning()) {
      b.setLeaveRunning(true);
    }
    need(o.leaveStopped(), "leaveStopped", 3, 19);
    if (o.leaveStopped()) {
      b.setLeaveStopped(true);
    }
    if (o.shellJob()) {
      b.setShellJob(true);
    }
    if (o.restoreSibling()) {
      b.setRstSibling(true);
    }
    b.addAllExecCmd(o.execCommand());
    if (o.freezeTimeoutSeconds() != 0) {
      b.setTimeout(o.freezeTimeoutSeconds());
    }
    if (o.freezeCgroup() != null) {
      b.setFreezeCgroup(o.freezeCgroup());
    }
    if (o.orphanPtsMaster()) {
      b.setOrphanPtsMaster(true);
    }
    need(o.unprivileged(), "unprivileged", 3, 18);
    if (o.unprivileged()) {
      b.setUnprivileged(true);
    }

    if (o.externalUnixSockets()) {
      b.setExtUnixSk(true);
    }
    if (o.tcpEstablished()) {
      b.setTcpEstablished(true);
    }
    if (o.tcpSkipInFlight()) {
      b.setTcpSkipInFlight(true);
    }
    if (o.tcpClose()) {
      b.setTcpClose(true);
    }
    if (o.evasiveDevices()) {
      b.setEvasiveDevices(true);
    }
    if (o.fileLocks()) {
      b.setFileLocks(true);
    }
    if (o.linkRemap()) {
      b.setLinkRemap(true);
    }
    if (o.ghostLimit() >= 0) {
      b.setGhostLimit((int) o.ghostLimit());
    }
    if (o.forceIrmap()) {
      b.setForceIrmap(true);
    }
    b.addAllIrmapScanPaths(o.irmapScanPaths());
    for (CriuOptions.InheritedFd f : o.inheritedFds()) {
      b.addInheritFd(InheritFd.newBuilder().setKey(f.key()).setFd(handToChild(f.fd())));
    }
    b.addAllExternal(o.externals());
    need(o.skipFileRwxCheck(), "skipFileRwxCheck", 3, 18);
    if (o.skipFileRwxCheck()) {
      b.setSkipFileRwxCheck(true);
    }

    if (o.root() != null) {
      b.setRoot(o.root());
    }
    if (o.autoExternalMounts()) {
      b.setAutoExtMnt(true);
    }
    if (o.externalSharing()) {
      b.setExtSharing(true);
    }
    if (o.externalMasters()) {
      b.setExtMasters(true);
    }
    b.addAllSkipMnt(o.skipMounts());
    b.addAllEnableFs(o.enableFilesystems());
    o.externalMounts().forEach((k, v) ->
        b.addExtMnt(ExternalMountMapping.newBuilder().setKey(k).setVal(v)));
    if (o.mountNamespaceCompatMode()) {
      b.setMntnsCompatMode(true);
    }
    if (o.lsmProfile() != null) {
      b.setLsmProfile(o.lsmProfile());
    }
    need(o.lsmMountContext() != null, "lsmMountContext", 3, 16);
    if (o.lsmMountContext() != null) {
      b.setLsmMountContext(o.lsmMountContext());
    }

    if (o.emptyNamespaces() != 0) {
      b.setEmptyNs(o.emptyNamespaces());
    }
    for (CriuOptions.JoinNamespace j : o.joinNamespaces()) {
      JoinNamespace.Builder jb = JoinNamespace.newBuilder().setNs(j.ns()).setNsFile(j.file());
      if (j.extraOption() != null) {
        jb.setExtraOpt(j.extraOption());
      }
      b.addJoinNs(jb);
    }
    if (o.weakSysctls()) {
      b.setWeakSysctls(true);
    }
    if (o.networkLock() != null) {
      need(true, "networkLock", 3, 16);
      need(o.networkLock() == CriuOptions.NetworkLockMethod.SKIP, "networkLock(SKIP)", 3, 19);
      b.setNetworkLock(NetworkLockMethod.valueOf(o.networkLock().name()));
    }

    if (o.manageCgroups() != null) {
      b.setManageCgroups(true);
      b.setManageCgroupsMode(o.manageCgroups() == CriuOptions.CgroupMode.NONE
          ? CgroupMode.CG_NONE : CgroupMode.valueOf(o.manageCgroups().name()));
    }
    for (CriuOptions.CgroupRoot r : o.cgroupRoots()) {
      CgroupRoot.Builder rb = CgroupRoot.newBuilder().setPath(r.path());
      if (r.controller() != null) {
        rb.setCtrl(r.controller());
      }
      b.addCgRoot(rb);
    }
    if (o.cgroupProperties() != null) {
      b.setCgroupProps(o.cgroupProperties());
    }
    if (o.cgroupPropertiesFile() != null) {
      b.setCgroupPropsFile(o.cgroupPropertiesFile());
    }
    b.addAllCgroupDumpController(o.cgroupDumpControllers());
    if (o.cgroupYard() != null) {
      b.setCgroupYard(o.cgroupYard());
    }

    CriuOptions.PageServerTarget ps = o.pageServer();
    if (ps != null) {
      PageServerInfo.Builder pb = PageServerInfo.newBuilder();
      if (ps.hasFd()) {
        pb.setFd(handToChild(ps.fd()));
      } else {
        if (ps.address() != null) {
          pb.setAddress(ps.address());
        }
        pb.setPort(ps.port());
      }
      b.setPs(pb);
    }
    if (o.parentImages() != null) {
      b.setParentImg(o.parentImages());
    }
    if (o.trackMemory()) {
      b.setTrackMem(true);
    }
    if (o.autoDedup()) {
      b.setAutoDedup(true);
    }
    if (o.lazyPages()) {
      b.setLazyPages(true);
    }
    if (o.preDumpMode() != null) {
      b.setPreDumpMode(o.preDumpMode() == CriuOptions.PreDumpMode.READ
          ? PreDumpMode.VM_READ : PreDumpMode.SPLICE);
    }
    if (o.cpuCapabilities() != -1) {
      b.setCpuCap(o.cpuCapabilities());
    }

    if (o.tls()) {
      b.setTls(true);
    }
    if (o.tlsCaCertificate() != null) {
      b.setTlsCacert(o.tlsCaCertificate());
    }
    if (o.tlsCaRevocationList() != null) {
      b.setTlsCacrl(o.tlsCaRevocationList());
    }
    if (o.tlsCertificate() != null) {
      b.setTlsCert(o.tlsCertificate());
    }
    if (o.tlsKey() != null) {
      b.setTlsKey(o.tlsKey());
    }
    if (o.tlsNoCnVerify()) {
      b.setTlsNoCnVerify(true);
    }
    if (o.configFile() != null) {
      b.setConfigFile(o.configFile());
    }
    return b;
  }
}
