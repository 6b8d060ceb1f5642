package io.criu4j;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Immutable options for CRIU operations, grouped as CRIU groups them: tree and state, files and
 * sockets, mounts, namespaces and network, cgroups, memory and migration, TLS. Each operation
 * uses the options that apply to it. Unset options are not sent, so CRIU's own defaults apply;
 * setting an option the running CRIU is too old for fails the operation with a message naming the
 * option and the version it needs.
 *
 * <p>Create with {@link #builder()}, derive variants with {@link #toBuilder()}. Thread-safe.
 *
 * @since 0.1
 */
public final class CriuOptions {
  /** Options with every value unset. */
  public static final CriuOptions DEFAULTS = builder().build();

  /** How CRIU handles cgroups ({@code --manage-cgroups}). */
  public enum CgroupMode { IGNORE, NONE, PROPS, SOFT, FULL, STRICT, DEFAULT }

  /** How CRIU locks the network while the tree is frozen ({@code --network-lock}). */
  public enum NetworkLockMethod { IPTABLES, NFTABLES, SKIP }

  /** How pre-dump reads memory ({@code --pre-dump-mode}). */
  public enum PreDumpMode { SPLICE, READ }

  /**
   * A descriptor of this process that CRIU should use for the resource {@code key} (for example
   * {@code "pipe:[12345]"}). The caller keeps ownership of {@code fd}; criu4j hands CRIU a copy.
   */
  public record InheritedFd(String key, int fd) {
    public InheritedFd {
      Objects.requireNonNull(key, "key");
      if (fd < 0) {
        throw new IllegalArgumentException("fd < 0: " + fd);
      }
    }
  }

  /** An existing namespace ({@code ns} such as {@code "net"}) to restore into. */
  public record JoinNamespace(String ns, String file, String extraOption) {
    public JoinNamespace {
      Objects.requireNonNull(ns, "ns");
      Objects.requireNonNull(file, "file");
    }
  }

  /** A cgroup root: {@code controller} (null for all) mapped to {@code path}. */
  public record CgroupRoot(String controller, String path) {
    public CgroupRoot {
      Objects.requireNonNull(path, "path");
    }
  }

  /**
   * Where a dump sends its pages: a page server at {@code address:port}, or an already
   * connected stream socket {@code fd} of this process (the caller keeps ownership; criu4j hands
   * CRIU a copy). For a page server operation, the port it listens on (0: any) or the fd it serves.
   */
  public record PageServerTarget(String address, int port, int fd) {
    public PageServerTarget {
      if (port < 0 || port > 65535) {
        throw new IllegalArgumentException("port out of range: " + port);
      }
      if (fd < -1) {
        throw new IllegalArgumentException("fd < -1: " + fd);
      }
    }

    public static PageServerTarget address(String address, int port) {
      return new PageServerTarget(Objects.requireNonNull(address, "address"), port, -1);
    }

    public static PageServerTarget port(int port) {
      return new PageServerTarget(null, port, -1);
    }

    public static PageServerTarget fd(int fd) {
      if (fd < 0) {
        throw new IllegalArgumentException("fd < 0: " + fd);
      }
      return new PageServerTarget(null, 0, fd);
    }

    public boolean hasFd() {
      return fd >= 0;
    }
  }

  private final int pid;
  private final boolean leaveRunning;
  private final boolean leaveStopped;
  private final boolean shellJob;
  private final boolean restoreSibling;
  private final List<String> execCommand;
  private final int freezeTimeoutSeconds;
  private final String freezeCgroup;
  private final boolean orphanPtsMaster;
  private final boolean unprivileged;
  private final boolean externalUnixSockets;
  private final boolean tcpEstablished;
  private final boolean tcpSkipInFlight;
  private final boolean tcpClose;
  private final boolean evasiveDevices;
  private final boolean fileLocks;
  private final boolean linkRemap;
  private final long ghostLimit;
  private final boolean forceIrmap;
  private final List<String> irmapScanPaths;
  private final List<InheritedFd> inheritedFds;
  private final List<String> externals;
  private final boolean skipFileRwxCheck;
  private final String root;
  private final boolean autoExternalMounts;
  private final boolean externalSharing;
  private final boolean externalMasters;
  private final List<String> skipMounts;
  private final List<String> enableFilesystems;
  private final Map<String, String> externalMounts;
  private final boolean mountNamespaceCompatMode;
  private final String lsmProfile;
  private final String lsmMountContext;
  private final int emptyNamespaces;
  private final List<JoinNamespace> joinNamespaces;
  private final boolean weakSysctls;
  private final NetworkLockMethod networkLock;
  private final CgroupMode manageCgroups;
  private final List<CgroupRoot> cgroupRoots;
  private final String cgroupProperties;
  private final String cgroupPropertiesFile;
  private final List<String> cgroupDumpControllers;
  private final String cgroupYard;
  private final PageServerTarget pageServer;
  private final String parentImages;
  private final boolean trackMemory;
  private final boolean autoDedup;
  private final boolean lazyPages;
  private final PreDumpMode preDumpMode;
  private final int cpuCapabilities;
  private final boolean tls;
  private final String tlsCaCertificate;
  private final String tlsCaRevocationList;
  private final String tlsCertificate;
  private final String tlsKey;
  private final boolean tlsNoCnVerify;
  private final String configFile;
  private final Path workDir;

  private CriuOptions(Builder b) {
    this.pid = b.pid;
    this.leaveRunning = b.leaveRunning;
    this.leaveStopped = b.leaveStopped;
    this.shellJob = b.shellJob;
    this.restoreSibling = b.restoreSibling;
    this.execCommand = List.copyOf(b.execCommand);
    this.freezeTimeoutSeconds = b.freezeTimeoutSeconds;
    this.freezeCgroup = b.freezeCgroup;
    this.orphanPtsMaster = b.orphanPtsMaster;
    this.unprivileged = b.unprivileged;
    this.externalUnixSockets = b.externalUnixSockets;
    this.tcpEstablished = b.tcpEstablished;
    this.tcpSkipInFlight = b.tcpSkipInFlight;
    this.tcpClose = b.tcpClose;
    this.evasiveDevices = b.evasiveDevices;
    this.fileLocks = b.fileLocks;
    this.linkRemap = b.linkRemap;
    this.ghostLimit = b.ghostLimit;
    this.forceIrmap = b.forceIrmap;
    this.irmapScanPaths = List.copyOf(b.irmapScanPaths);
    this.inheritedFds = List.copyOf(b.inheritedFds);
    this.externals = List.copyOf(b.externals);
    this.skipFileRwxCheck = b.skipFileRwxCheck;
    this.root = b.root;
    this.autoExternalMounts = b.autoExternalMounts;
    this.externalSharing = b.externalSharing;
    this.externalMasters = b.externalMasters;
    this.skipMounts = List.copyOf(b.skipMounts);
    this.enableFilesystems = List.copyOf(b.enableFilesystems);
    this.externalMounts = Map.copyOf(b.externalMounts);
    this.mountNamespaceCompatMode = b.mountNamespaceCompatMode;
    this.lsmProfile = b.lsmProfile;
    this.lsmMountContext = b.lsmMountContext;
    this.emptyNamespaces = b.emptyNamespaces;
    this.joinNamespaces = List.copyOf(b.joinNamespaces);
    this.weakSysctls = b.weakSysctls;
    this.networkLock = b.networkLock;
    this.manageCgroups = b.manageCgroups;
    this.cgroupRoots = List.copyOf(b.cgroupRoots);
    this.cgroupProperties = b.cgroupProperties;
    this.cgroupPropertiesFile = b.cgroupPropertiesFile;
    this.cgroupDumpControllers = List.copyOf(b.cgroupDumpControllers);
    this.cgroupYard = b.cgroupYard;
    this.pageServer = b.pageServer;
    this.parentImages = b.parentImages;
    this.trackMemory = b.trackMemory;
    this.autoDedup = b.autoDedup;
    this.lazyPages = b.lazyPages;
    this.preDumpMode = b.preDumpMode;
    this.cpuCapabilities = b.cpuCapabilities;
    this.tls = b.tls;
    this.tlsCaCertificate = b.tlsCaCertificate;
    this.tlsCaRevocationList = b.tlsCaRevocationList;
    this.tlsCertificate = b.tlsCertificate;
    this.tlsKey = b.tlsKey;
    this.tlsNoCnVerify = b.tlsNoCnVerify;
    this.configFile = b.configFile;
    this.workDir = b.workDir;
  }

  public static Builder builder() {
    return new Builder();
  }

  /** A builder holding these options. */
  public Builder toBuilder() {
    return new Builder(this);
  }

  // Tree and state

  /** Root of the tree to dump; 0 dumps the caller itself (DUMP) or is ignored. */
  public int pid() {
    return pid;
  }

  /** Let the tasks run after a dump. */
  public boolean leaveRunning() {
    return leaveRunning;
  }

  /** Leave the tasks stopped after a dump or restore (CRIU 3.19+). */
  public boolean leaveStopped() {
    return leaveStopped;
  }

  /** The tree is a shell job (shares the caller's session or terminal). */
  public boolean shellJob() {
    return shellJob;
  }

  /** Restore the root task as a sibling of CRIU, i.e. as a child of this process. */
  public boolean restoreSibling() {
    return restoreSibling;
  }

  /** Command CRIU executes after a successful restore. */
  public List<String> execCommand() {
    return execCommand;
  }

  /** CRIU's own limit on freezing the tree; 0 keeps CRIU's default. */
  public int freezeTimeoutSeconds() {
    return freezeTimeoutSeconds;
  }

  /** Freeze through this cgroup instead of ptrace. */
  public String freezeCgroup() {
    return freezeCgroup;
  }

  /** Hand the master of an orphaned pty to the notifier on restore. */
  public boolean orphanPtsMaster() {
    return orphanPtsMaster;
  }

  /** Run CRIU in unprivileged mode (CRIU 3.18+). */
  public boolean unprivileged() {
    return unprivileged;
  }

  // Files and sockets

  /** Allow Unix sockets connected to peers outside the tree. */
  public boolean externalUnixSockets() {
    return externalUnixSockets;
  }

  /** Checkpoint established TCP connections. */
  public boolean tcpEstablished() {
    return tcpEstablished;
  }

  /** Skip TCP connections that are not yet accepted. */
  public boolean tcpSkipInFlight() {
    return tcpSkipInFlight;
  }

  /** Close established TCP connections on restore. */
  public boolean tcpClose() {
    return tcpClose;
  }

  /** Allow device files that cannot be reopened by path. */
  public boolean evasiveDevices() {
    return evasiveDevices;
  }

  /** Checkpoint file locks. */
  public boolean fileLocks() {
    return fileLocks;
  }

  /** Allow link remapping of unlinked-but-open files. */
  public boolean linkRemap() {
    return linkRemap;
  }

  /** Largest unlinked file CRIU copies into the images, in bytes; -1 keeps CRIU's default. */
  public long ghostLimit() {
    return ghostLimit;
  }

  /** Force resolving inotify/fsnotify watch names. */
  public boolean forceIrmap() {
    return forceIrmap;
  }

  /** Where to look for inotify watch targets. */
  public List<String> irmapScanPaths() {
    return irmapScanPaths;
  }

  /** Descriptors of this process handed to CRIU as inherited resources (restore). */
  public List<InheritedFd> inheritedFds() {
    return inheritedFds;
  }

  /** --external specifications. */
  public List<String> externals() {
    return externals;
  }

  /** Skip the file permission check on restore (CRIU 3.18+). */
  public boolean skipFileRwxCheck() {
    return skipFileRwxCheck;
  }

  // Mounts

  /** Root directory of the restored tree. */
  public String root() {
    return root;
  }

  /** Treat mounts from outside the mount namespace as external. */
  public boolean autoExternalMounts() {
    return autoExternalMounts;
  }

  /** Allow external shared mounts. */
  public boolean externalSharing() {
    return externalSharing;
  }

  /** Allow external slave mounts. */
  public boolean externalMasters() {
    return externalMasters;
  }

  /** Mount points to ignore. */
  public List<String> skipMounts() {
    return skipMounts;
  }

  /** File systems CRIU may dump the contents of. */
  public List<String> enableFilesystems() {
    return enableFilesystems;
  }

  /** External mount mappings, key to value (old form of externals). */
  public Map<String, String> externalMounts() {
    return externalMounts;
  }

  /** Use the old mount-namespace restore engine (CRIU 3.17+). */
  public boolean mountNamespaceCompatMode() {
    return mountNamespaceCompatMode;
  }

  /** LSM profile to restore with. */
  public String lsmProfile() {
    return lsmProfile;
  }

  /** LSM mount context to restore with (CRIU 3.16+). */
  public String lsmMountContext() {
    return lsmMountContext;
  }

  // Namespaces and network

  /** Namespaces (CLONE_NEWNET only) to create empty on restore. */
  public int emptyNamespaces() {
    return emptyNamespaces;
  }

  /** Existing namespaces to restore into. */
  public List<JoinNamespace> joinNamespaces() {
    return joinNamespaces;
  }

  /** Ignore sysctls that cannot be restored. */
  public boolean weakSysctls() {
    return weakSysctls;
  }

  /** How to lock the network during dump and restore; null keeps CRIU's default. */
  public NetworkLockMethod networkLock() {
    return networkLock;
  }

  // Cgroups

  /** How CRIU handles cgroups; null keeps CRIU's default. */
  public CgroupMode manageCgroups() {
    return manageCgroups;
  }

  /** Cgroup root remapping. */
  public List<CgroupRoot> cgroupRoots() {
    return cgroupRoots;
  }

  /** Cgroup properties to restore (YAML). */
  public String cgroupProperties() {
    return cgroupProperties;
  }

  /** File with cgroup properties to restore. */
  public String cgroupPropertiesFile() {
    return cgroupPropertiesFile;
  }

  /** Controllers whose properties are dumped. */
  public List<String> cgroupDumpControllers() {
    return cgroupDumpControllers;
  }

  /** Where CRIU mounts cgroup controllers. */
  public String cgroupYard() {
    return cgroupYard;
  }

  // Memory and migration

  /** Send pages to a page server instead of the images directory. */
  public PageServerTarget pageServer() {
    return pageServer;
  }

  /** Parent images directory, relative to the images directory (pre-copy). */
  public String parentImages() {
    return parentImages;
  }

  /** Track dirty pages for the next iteration. */
  public boolean trackMemory() {
    return trackMemory;
  }

  /** Punch holes in parent images that this dump supersedes. */
  public boolean autoDedup() {
    return autoDedup;
  }

  /** Leave pages to a lazy-pages server (post-copy). */
  public boolean lazyPages() {
    return lazyPages;
  }

  /** How pre-dump reads memory; null keeps CRIU's default (SPLICE). */
  public PreDumpMode preDumpMode() {
    return preDumpMode;
  }

  /** cpu_cap bit mask; -1 keeps CRIU's default. */
  public int cpuCapabilities() {
    return cpuCapabilities;
  }

  // TLS

  /** Encrypt page-server traffic with TLS. */
  public boolean tls() {
    return tls;
  }

  /** CA certificate (PEM path). */
  public String tlsCaCertificate() {
    return tlsCaCertificate;
  }

  /** CA revocation list (PEM path). */
  public String tlsCaRevocationList() {
    return tlsCaRevocationList;
  }

  /** Own certificate (PEM path). */
  public String tlsCertificate() {
    return tlsCertificate;
  }

  /** Own private key (PEM path). */
  public String tlsKey() {
    return tlsKey;
  }

  /** Do not check the peer certificate's common name. */
  public boolean tlsNoCnVerify() {
    return tlsNoCnVerify;
  }

  // CRIU itself

  /** CRIU configuration file parsed around these options. */
  public String configFile() {
    return configFile;
  }

  /** Where CRIU writes its log and statistics; default: the images directory. */
  public Path workDir() {
    return workDir;
  }

  @Override
  public boolean equals(Object o) {
    if (!(o instanceof CriuOptions other)) {
      return false;
    }
    return Objects.equals(pid, other.pid)
        && Objects.equals(leaveRunning, other.leaveRunning)
        && Objects.equals(leaveStopped, other.leaveStopped)
        && Objects.equals(shellJob, other.shellJob)
        && Objects.equals(restoreSibling, other.restoreSibling)
        && Objects.equals(execCommand, other.execCommand)
        && Objects.equals(freezeTimeoutSeconds, other.freezeTimeoutSeconds)
        && Objects.equals(freezeCgroup, other.freezeCgroup)
        && Objects.equals(orphanPtsMaster, other.orphanPtsMaster)
        && Objects.equals(unprivileged, other.unprivileged)
        && Objects.equals(externalUnixSockets, other.externalUnixSockets)
        && Objects.equals(tcpEstablished, other.tcpEstablished)
        && Objects.equals(tcpSkipInFlight, other.tcpSkipInFlight)
        && Objects.equals(tcpClose, other.tcpClose)
        && Objects.equals(evasiveDevices, other.evasiveDevices)
        && Objects.equals(fileLocks, other.fileLocks)
        && Objects.equals(linkRemap, other.linkRemap)
        && Objects.equals(ghostLimit, other.ghostLimit)
        && Objects.equals(forceIrmap, other.forceIrmap)
        && Objects.equals(irmapScanPaths, other.irmapScanPaths)
        && Objects.equals(inheritedFds, other.inheritedFds)
        && Objects.equals(externals, other.externals)
        && Objects.equals(skipFileRwxCheck, other.skipFileRwxCheck)
        && Objects.equals(root, other.root)
        && Objects.equals(autoExternalMounts, other.autoExternalMounts)
        && Objects.equals(externalSharing, other.externalSharing)
        && Objects.equals(externalMasters, other.externalMasters)
        && Objects.equals(skipMounts, other.skipMounts)
        && Objects.equals(enableFilesystems, other.enableFilesystems)
        && Objects.equals(externalMounts, other.externalMounts)
        && Objects.equals(mountNamespaceCompatMode, other.mountNamespaceCompatMode)
        && Objects.equals(lsmProfile, other.lsmProfile)
        && Objects.equals(lsmMountContext, other.lsmMountContext)
        && Objects.equals(emptyNamespaces, other.emptyNamespaces)
        && Objects.equals(joinNamespaces, other.joinNamespaces)
        && Objects.equals(weakSysctls, other.weakSysctls)
        && Objects.equals(networkLock, other.networkLock)
        && Objects.equals(manageCgroups, other.manageCgroups)
        && Objects.equals(cgroupRoots, other.cgroupRoots)
        && Objects.equals(cgroupProperties, other.cgroupProperties)
        && Objects.equals(cgroupPropertiesFile, other.cgroupPropertiesFile)
        && Objects.equals(cgroupDumpControllers, other.cgroupDumpControllers)
        && Objects.equals(cgroupYard, other.cgroupYard)
        && Objects.equals(pageServer, other.pageServer)
        && Objects.equals(parentImages, other.parentImages)
        && Objects.equals(trackMemory, other.trackMemory)
        && Objects.equals(autoDedup, other.autoDedup)
        && Objects.equals(lazyPages, other.lazyPages)
        && Objects.equals(preDumpMode, other.preDumpMode)
        && Objects.equals(cpuCapabilities, other.cpuCapabilities)
        && Objects.equals(tls, other.tls)
        && Objects.equals(tlsCaCertificate, other.tlsCaCertificate)
        && Objects.equals(tlsCaRevocationList, other.tlsCaRevocationList)
        && Objects.equals(tlsCertificate, other.tlsCertificate)
        && Objects.equals(tlsKey, other.tlsKey)
        && Objects.equals(tlsNoCnVerify, other.tlsNoCnVerify)
        && Objects.equals(configFile, other.configFile)
        && Objects.equals(workDir, other.workDir);
  }

  @Override
  public int hashCode() {
    return Objects.hash(pid, leaveRunning, leaveStopped, shellJob, restoreSibling, execCommand, freezeTimeoutSeconds, freezeCgroup, orphanPtsMaster, unprivileged, externalUnixSockets, tcpEstablished, tcpSkipInFlight, tcpClose, evasiveDevices, fileLocks, linkRemap, ghostLimit, forceIrmap, irmapScanPaths, inheritedFds, externals, skipFileRwxCheck, root, autoExternalMounts, externalSharing, externalMasters, skipMounts, enableFilesystems, externalMounts, mountNamespaceCompatMode, lsmProfile, lsmMountContext, emptyNamespaces, joinNamespaces, weakSysctls, networkLock, manageCgroups, cgroupRoots, cgroupProperties, cgroupPropertiesFile, cgroupDumpControllers, cgroupYard, pageServer, parentImages, trackMemory, autoDedup, lazyPages, preDumpMode, cpuCapabilities, tls, tlsCaCertificate, tlsCaRevocationList, tlsCertificate, tlsKey, tlsNoCnVerify, configFile, workDir);
  }

  /** Lists the options that differ from {@link #DEFAULTS}. */
  @Override
  public String toString() {
    StringBuilder sb = new StringBuilder("CriuOptions{");
    String sep = "";

    if (!Objects.equals(pid, DEFAULTS == null ? Builder.DEFAULT.pid : DEFAULTS.pid)) {
      sb.append(sep).append("pid=").append(pid);
      sep = ", ";
    }
    if (!Objects.equals(leaveRunning, DEFAULTS == null ? Builder.DEFAULT.leaveRunning : DEFAULTS.leaveRunning)) {
      sb.append(sep).append("leaveRunning=").append(leaveRunning);
      sep = ", ";
    }
    if (!Objects.equals(leaveStopped, DEFAULTS == null ? Builder.DEFAULT.leaveStopped : DEFAULTS.leaveStopped)) {
      sb.append(sep).append("leaveStopped=").append(leaveStopped);
      sep = ", ";
    }
    if (!Objects.equals(shellJob, DEFAULTS == null ? Builder.DEFAULT.shellJob : DEFAULTS.shellJob)) {
      sb.append(sep).append("shellJob=").append(shellJob);
      sep = ", ";
    }
    if (!Objects.equals(restoreSibling, DEFAULTS == null ? Builder.DEFAULT.restoreSibling : DEFAULTS.restoreSibling)) {
      sb.append(sep).append("restoreSibling=").append(restoreSibling);
      sep = ", ";
    }
    if (!Objects.equals(execCommand, DEFAULTS == null ? Builder.DEFAULT.execCommand : DEFAULTS.execCommand)) {
      sb.append(sep).append("execCommand=").append(execCommand);
      sep = ", ";
    }
    if (!Objects.equals(freezeTimeoutSeconds, DEFAULTS == null ? Builder.DEFAULT.freezeTimeoutSeconds : DEFAULTS.freezeTimeoutSeconds)) {
      sb.append(sep).append("freezeTimeoutSeconds=").append(freezeTimeoutSeconds);
      sep = ", ";
    }
    if (!Objects.equals(freezeCgroup, DEFAULTS == null ? Builder.DEFAULT.freezeCgroup : DEFAULTS.freezeCgroup)) {
      sb.append(sep).append("freezeCgroup=").append(freezeCgroup);
      sep = ", ";
    }
    if (!Objects.equals(orphanPtsMaster, DEFAULTS == null ? Builder.DEFAULT.orphanPtsMaster : DEFAULTS.orphanPtsMaster)) {
      sb.append(sep).append("orphanPtsMaster=").append(orphanPtsMaster);
      sep = ", ";
    }
    if (!Objects.equals(unprivileged, DEFAULTS == null ? Builder.DEFAULT.unprivileged : DEFAULTS.unprivileged)) {
      sb.append(sep).append("unprivileged=").append(unprivileged);
      sep = ", ";
    }
    if (!Objects.equals(externalUnixSockets, DEFAULTS == null ? Builder.DEFAULT.externalUnixSockets : DEFAULTS.externalUnixSockets)) {
      sb.append(sep).append("externalUnixSockets=").append(externalUnixSockets);
      sep = ", ";
    }
    if (!Objects.equals(tcpEstablished, DEFAULTS == null ? Builder.DEFAULT.tcpEstablished : DEFAULTS.tcpEstablished)) {
      sb.append(sep).append("tcpEstablished=").append(tcpEstablished);
      sep = ", ";
    }
    if (!Objects.equals(tcpSkipInFlight, DEFAULTS == null ? Builder.DEFAULT.tcpSkipInFlight : DEFAULTS.tcpSkipInFlight)) {
      sb.append(sep).append("tcpSkipInFlight=").append(tcpSkipInFlight);
      sep = ", ";
    }
    if (!Objects.equals(tcpClose, DEFAULTS == null ? Builder.DEFAULT.tcpClose : DEFAULTS.tcpClose)) {
      sb.append(sep).append("tcpClose=").append(tcpClose);
      sep = ", ";
    }
    if (!Objects.equals(evasiveDevices, DEFAULTS == null ? Builder.DEFAULT.evasiveDevices : DEFAULTS.evasiveDevices)) {
      sb.append(sep).append("evasiveDevices=").append(evasiveDevices);
      sep = ", ";
    }
    if (!Objects.equals(fileLocks, DEFAULTS == null ? Builder.DEFAULT.fileLocks : DEFAULTS.fileLocks)) {
      sb.append(sep).append("fileLocks=").append(fileLocks);
      sep = ", ";
    }
    if (!Objects.equals(linkRemap, DEFAULTS == null ? Builder.DEFAULT.linkRemap : DEFAULTS.linkRemap)) {
      sb.append(sep).append("linkRemap=").append(linkRemap);
      sep = ", ";
    }
    if (!Objects.equals(ghostLimit, DEFAULTS == null ? Builder.DEFAULT.ghostLimit : DEFAULTS.ghostLimit)) {
      sb.append(sep).append("ghostLimit=").append(ghostLimit);
      sep = ", ";
    }
    if (!Objects.equals(forceIrmap, DEFAULTS == null ? Builder.DEFAULT.forceIrmap : DEFAULTS.forceIrmap)) {
      sb.append(sep).append("forceIrmap=").append(forceIrmap);
      sep = ", ";
    }
    if (!Objects.equals(irmapScanPaths, DEFAULTS == null ? Builder.DEFAULT.irmapScanPaths : DEFAULTS.irmapScanPaths)) {
      sb.append(sep).append("irmapScanPaths=").append(irmapScanPaths);
      sep = ", ";
    }
    if (!Objects.equals(inheritedFds, DEFAULTS == null ? Builder.DEFAULT.inheritedFds : DEFAULTS.inheritedFds)) {
      sb.append(sep).append("inheritedFds=").append(inheritedFds);
      sep = ", ";
    }
    if (!Objects.equals(externals, DEFAULTS == null ? Builder.DEFAULT.externals : DEFAULTS.externals)) {
      sb.append(sep).append("externals=").append(externals);
      sep = ", ";
    }
    if (!Objects.equals(skipFileRwxCheck, DEFAULTS == null ? Builder.DEFAULT.skipFileRwxCheck : DEFAULTS.skipFileRwxCheck)) {
      sb.append(sep).append("skipFileRwxCheck=").append(skipFileRwxCheck);
      sep = ", ";
    }
    if (!Objects.equals(root, DEFAULTS == null ? Builder.DEFAULT.root : DEFAULTS.root)) {
      sb.append(sep).append("root=").append(root);
      sep = ", ";
    }
    if (!Objects.equals(autoExternalMounts, DEFAULTS == null ? Builder.DEFAULT.autoExternalMounts : DEFAULTS.autoExternalMounts)) {
      sb.append(sep).append("autoExternalMounts=").append(autoExternalMounts);
      sep = ", ";
    }
    if (!Objects.equals(externalSharing, DEFAULTS == null ? Builder.DEFAULT.externalSharing : DEFAULTS.externalSharing)) {
      sb.append(sep).append("externalSharing=").append(externalSharing);
      sep = ", ";
    }
    if (!Objects.equals(externalMasters, DEFAULTS == null ? Builder.DEFAULT.externalMasters : DEFAULTS.externalMasters)) {
      sb.append(sep).append("externalMasters=").append(externalMasters);
      sep = ", ";
    }
    if (!Objects.equals(skipMounts, DEFAULTS == null ? Builder.DEFAULT.skipMounts : DEFAULTS.skipMounts)) {
      sb.append(sep).append("skipMounts=").append(skipMounts);
      sep = ", ";
    }
    if (!Objects.equals(enableFilesystems, DEFAULTS == null ? Builder.DEFAULT.enableFilesystems : DEFAULTS.enableFilesystems)) {
      sb.append(sep).append("enableFilesystems=").append(enableFilesystems);
      sep = ", ";
    }
    if (!Objects.equals(externalMounts, DEFAULTS == null ? Builder.DEFAULT.externalMounts : DEFAULTS.externalMounts)) {
      sb.append(sep).append("externalMounts=").append(externalMounts);
      sep = ", ";
    }
    if (!Objects.equals(mountNamespaceCompatMode, DEFAULTS == null ? Builder.DEFAULT.mountNamespaceCompatMode : DEFAULTS.mountNamespaceCompatMode)) {
      sb.append(sep).append("mountNamespaceCompatMode=").append(mountNamespaceCompatMode);
      sep = ", ";
    }
    if (!Objects.equals(lsmProfile, DEFAULTS == null ? Builder.DEFAULT.lsmProfile : DEFAULTS.lsmProfile)) {
      sb.append(sep).append("lsmProfile=").append(lsmProfile);
      sep = ", ";
    }
    if (!Objects.equals(lsmMountContext, DEFAULTS == null ? Builder.DEFAULT.lsmMountContext : DEFAULTS.lsmMountContext)) {
      sb.append(sep).append("lsmMountContext=").append(lsmMountContext);
      sep = ", ";
    }
    if (!Objects.equals(emptyNamespaces, DEFAULTS == null ? Builder.DEFAULT.emptyNamespaces : DEFAULTS.emptyNamespaces)) {
      sb.append(sep).append("emptyNamespaces=").append(emptyNamespaces);
      sep = ", ";
    }
    if (!Objects.equals(joinNamespaces, DEFAULTS == null ? Builder.DEFAULT.joinNamespaces : DEFAULTS.joinNamespaces)) {
      sb.append(sep).append("joinNamespaces=").append(joinNamespaces);
      sep = ", ";
    }
    if (!Objects.equals(weakSysctls, DEFAULTS == null ? Builder.DEFAULT.weakSysctls : DEFAULTS.weakSysctls)) {
      sb.append(sep).append("weakSysctls=").append(weakSysctls);
      sep = ", ";
    }
    if (!Objects.equals(networkLock, DEFAULTS == null ? Builder.DEFAULT.networkLock : DEFAULTS.networkLock)) {
      sb.append(sep).append("networkLock=").append(networkLock);
      sep = ", ";
    }
    if (!Objects.equals(manageCgroups, DEFAULTS == null ? Builder.DEFAULT.manageCgroups : DEFAULTS.manageCgroups)) {
      sb.append(sep).append("manageCgroups=").append(manageCgroups);
      sep = ", ";
    }
    if (!Objects.equals(cgroupRoots, DEFAULTS == null ? Builder.DEFAULT.cgroupRoots : DEFAULTS.cgroupRoots)) {
      sb.append(sep).append("cgroupRoots=").append(cgroupRoots);
      sep = ", ";
    }
    if (!Objects.equals(cgroupProperties, DEFAULTS == null ? Builder.DEFAULT.cgroupProperties : DEFAULTS.cgroupProperties)) {
      sb.append(sep).append("cgroupProperties=").append(cgroupProperties);
      sep = ", ";
    }
    if (!Objects.equals(cgroupPropertiesFile, DEFAULTS == null ? Builder.DEFAULT.cgroupPropertiesFile : DEFAULTS.cgroupPropertiesFile)) {
      sb.append(sep).append("cgroupPropertiesFile=").append(cgroupPropertiesFile);
      sep = ", ";
    }
    if (!Objects.equals(cgroupDumpControllers, DEFAULTS == null ? Builder.DEFAULT.cgroupDumpControllers : DEFAULTS.cgroupDumpControllers)) {
      sb.append(sep).append("cgroupDumpControllers=").append(cgroupDumpControllers);
      sep = ", ";
    }
    if (!Objects.equals(cgroupYard, DEFAULTS == null ? Builder.DEFAULT.cgroupYard : DEFAULTS.cgroupYard)) {
      sb.append(sep).append("cgroupYard=").append(cgroupYard);
      sep = ", ";
    }
    if (!Objects.equals(pageServer, DEFAULTS == null ? Builder.DEFAULT.pageServer : DEFAULTS.pageServer)) {
      sb.append(sep).append("pageServer=").append(pageServer);
      sep = ", ";
    }
    if (!Objects.equals(parentImages, DEFAULTS == null ? Builder.DEFAULT.parentImages : DEFAULTS.parentImages)) {
      sb.append(sep).append("parentImages=").append(parentImages);
      sep = ", ";
    }
    if (!Objects.equals(trackMemory, DEFAULTS == null ? Builder.DEFAULT.trackMemory : DEFAULTS.trackMemory)) {
      sb.append(sep).append("trackMemory=").append(trackMemory);
      sep = ", ";
    }
    if (!Objects.equals(autoDedup, DEFAULTS == null ? Builder.DEFAULT.autoDedup : DEFAULTS.autoDedup)) {
      sb.append(sep).append("autoDedup=").append(autoDedup);
      sep = ", ";
    }
    if (!Objects.equals(lazyPages, DEFAULTS == null ? Builder.DEFAULT.lazyPages : DEFAULTS.lazyPages)) {
      sb.append(sep).append("lazyPages=").append(lazyPages);
      sep = ", ";
    }
    if (!Objects.equals(preDumpMode, DEFAULTS == null ? Builder.DEFAULT.preDumpMode : DEFAULTS.preDumpMode)) {
      sb.append(sep).append("preDumpMode=").append(preDumpMode);
      sep = ", ";
    }
    if (!Objects.equals(cpuCapabilities, DEFAULTS == null ? Builder.DEFAULT.cpuCapabilities : DEFAULTS.cpuCapabilities)) {
      sb.append(sep).append("cpuCapabilities=").append(cpuCapabilities);
      sep = ", ";
    }
    if (!Objects.equals(tls, DEFAULTS == null ? Builder.DEFAULT.tls : DEFAULTS.tls)) {
      sb.append(sep).append("tls=").append(tls);
      sep = ", ";
    }
    if (!Objects.equals(tlsCaCertificate, DEFAULTS == null ? Builder.DEFAULT.tlsCaCertificate : DEFAULTS.tlsCaCertificate)) {
      sb.append(sep).append("tlsCaCertificate=").append(tlsCaCertificate);
      sep = ", ";
    }
    if (!Objects.equals(tlsCaRevocationList, DEFAULTS == null ? Builder.DEFAULT.tlsCaRevocationList : DEFAULTS.tlsCaRevocationList)) {
      sb.append(sep).append("tlsCaRevocationList=").append(tlsCaRevocationList);
      sep = ", ";
    }
    if (!Objects.equals(tlsCertificate, DEFAULTS == null ? Builder.DEFAULT.tlsCertificate : DEFAULTS.tlsCertificate)) {
      sb.append(sep).append("tlsCertificate=").append(tlsCertificate);
      sep = ", ";
    }
    if (!Objects.equals(tlsKey, DEFAULTS == null ? Builder.DEFAULT.tlsKey : DEFAULTS.tlsKey)) {
      sb.append(sep).append("tlsKey=").append(tlsKey);
      sep = ", ";
    }
    if (!Objects.equals(tlsNoCnVerify, DEFAULTS == null ? Builder.DEFAULT.tlsNoCnVerify : DEFAULTS.tlsNoCnVerify)) {
      sb.append(sep).append("tlsNoCnVerify=").append(tlsNoCnVerify);
      sep = ", ";
    }
    if (!Objects.equals(configFile, DEFAULTS == null ? Builder.DEFAULT.configFile : DEFAULTS.configFile)) {
      sb.append(sep).append("configFile=").append(configFile);
      sep = ", ";
    }
    if (!Objects.equals(workDir, DEFAULTS == null ? Builder.DEFAULT.workDir : DEFAULTS.workDir)) {
      sb.append(sep).append("workDir=").append(workDir);
      sep = ", ";
    }
    return sb.append("}").toString();
  }

  /** Builds {@link CriuOptions}; not thread-safe. */
  public static final class Builder {
    private static final Builder DEFAULT = new Builder();

    private int pid = 0;
    private boolean leaveRunning = false;
    private boolean leaveStopped = false;
    private boolean shellJob = false;
    private boolean restoreSibling = false;
    private List<String> execCommand = new ArrayList<>();
    private int freezeTimeoutSeconds = 0;
    private String freezeCgroup = null;
    private boolean orphanPtsMaster = false;
    private boolean unprivileged = false;
    private boolean externalUnixSockets = false;
    private boolean tcpEstablished = false;
    private boolean tcpSkipInFlight = false;
    private boolean tcpClose = false;
    private boolean evasiveDevices = false;
    private boolean fileLocks = false;
    private boolean linkRemap = false;
    private long ghostLimit = -1;
    private boolean forceIrmap = false;
    private List<String> irmapScanPaths = new ArrayList<>();
    private List<InheritedFd> inheritedFds = new ArrayList<>();
    private List<String> externals = new ArrayList<>();
    private boolean skipFileRwxCheck = false;
    private String root = null;
    private boolean autoExternalMounts = false;
    private boolean externalSharing = false;
    private boolean externalMasters = false;
    private List<String> skipMounts = new ArrayList<>();
    private List<String> enableFilesystems = new ArrayList<>();
    private Map<String, String> externalMounts = new LinkedHashMap<>();
    private boolean mountNamespaceCompatMode = false;
    private String lsmProfile = null;
    private String lsmMountContext = null;
    private int emptyNamespaces = 0;
    private List<JoinNamespace> joinNamespaces = new ArrayList<>();
    private boolean weakSysctls = false;
    private NetworkLockMethod networkLock = null;
    private CgroupMode manageCgroups = null;
    private List<CgroupRoot> cgroupRoots = new ArrayList<>();
    private String cgroupProperties = null;
    private String cgroupPropertiesFile = null;
    private List<String> cgroupDumpControllers = new ArrayList<>();
    private String cgroupYard = null;
    private PageServerTarget pageServer = null;
    private String parentImages = null;
    private boolean trackMemory = false;
    private boolean autoDedup = false;
    private boolean lazyPages = false;
    private PreDumpMode preDumpMode = null;
    private int cpuCapabilities = -1;
    private boolean tls = false;
    private String tlsCaCertificate = null;
    private String tlsCaRevocationList = null;
    private String tlsCertificate = null;
    private String tlsKey = null;
    private boolean tlsNoCnVerify = false;
    private String configFile = null;
    private Path workDir = null;

    private Builder() {}

    private Builder(CriuOptions o) {
      this.pid = o.pid;
      this.leaveRunning = o.leaveRunning;
      this.leaveStopped = o.leaveStopped;
      this.shellJob = o.shellJob;
      this.restoreSibling = o.restoreSibling;
      this.execCommand = new ArrayList<>(o.execCommand);
      this.freezeTimeoutSeconds = o.freezeTimeoutSeconds;
      this.freezeCgroup = o.freezeCgroup;
      this.orphanPtsMaster = o.orphanPtsMaster;
      this.unprivileged = o.unprivileged;
      this.externalUnixSockets = o.externalUnixSockets;
      this.tcpEstablished = o.tcpEstablished;
      this.tcpSkipInFlight = o.tcpSkipInFlight;
      this.tcpClose = o.tcpClose;
      this.evasiveDevices = o.evasiveDevices;
      this.fileLocks = o.fileLocks;
      this.linkRemap = o.linkRemap;
      this.ghostLimit = o.ghostLimit;
      this.forceIrmap = o.forceIrmap;
      this.irmapScanPaths = new ArrayList<>(o.irmapScanPaths);
      this.inheritedFds = new ArrayList<>(o.inheritedFds);
      this.externals = new ArrayList<>(o.externals);
      this.skipFileRwxCheck = o.skipFileRwxCheck;
      this.root = o.root;
      this.autoExternalMounts = o.autoExternalMounts;
      this.externalSharing = o.externalSharing;
      this.externalMasters = o.externalMasters;
      this.skipMounts = new ArrayList<>(o.skipMounts);
      this.enableFilesystems = new ArrayList<>(o.enableFilesystems);
      this.externalMounts = new LinkedHashMap<>(o.externalMounts);
      this.mountNamespaceCompatMode = o.mountNamespaceCompatMode;
      this.lsmProfile = o.lsmProfile;
      this.lsmMountContext = o.lsmMountContext;
      this.emptyNamespaces = o.emptyNamespaces;
      this.joinNamespaces = new ArrayList<>(o.joinNamespaces);
      this.weakSysctls = o.weakSysctls;
      this.networkLock = o.networkLock;
      this.manageCgroups = o.manageCgroups;
      this.cgroupRoots = new ArrayList<>(o.cgroupRoots);
      this.cgroupProperties = o.cgroupProperties;
      this.cgroupPropertiesFile = o.cgroupPropertiesFile;
      this.cgroupDumpControllers = new ArrayList<>(o.cgroupDumpControllers);
      this.cgroupYard = o.cgroupYard;
      this.pageServer = o.pageServer;
      this.parentImages = o.parentImages;
      this.trackMemory = o.trackMemory;
      this.autoDedup = o.autoDedup;
      this.lazyPages = o.lazyPages;
      this.preDumpMode = o.preDumpMode;
      this.cpuCapabilities = o.cpuCapabilities;
      this.tls = o.tls;
      this.tlsCaCertificate = o.tlsCaCertificate;
      this.tlsCaRevocationList = o.tlsCaRevocationList;
      this.tlsCertificate = o.tlsCertificate;
      this.tlsKey = o.tlsKey;
      this.tlsNoCnVerify = o.tlsNoCnVerify;
      this.configFile = o.configFile;
      this.workDir = o.workDir;
    }

    /** Root of the tree to dump; 0 dumps the caller itself (DUMP) or is ignored. */
    public Builder pid(int value) {
      if (value < 0) {
        throw new IllegalArgumentException("pid < 0: " + value);
      }
      this.pid = value;
      return this;
    }

    /** Let the tasks run after a dump. */
    public Builder leaveRunning(boolean value) {
      this.leaveRunning = value;
      return this;
    }

    /** Leave the tasks stopped after a dump or restore (CRIU 3.19+). */
    public Builder leaveStopped(boolean value) {
      this.leaveStopped = value;
      return this;
    }

    /** The tree is a shell job (shares the caller's session or terminal). */
    public Builder shellJob(boolean value) {
      this.shellJob = value;
      return this;
    }

    /** Restore the root task as a sibling of CRIU, i.e. as a child of this process. */
    public Builder restoreSibling(boolean value) {
      this.restoreSibling = value;
      return this;
    }

    /** Command CRIU executes after a successful restore. Replaces earlier values. */
    public Builder execCommand(List<String> value) {
      this.execCommand = new ArrayList<>(Objects.requireNonNull(value, "execCommand"));
      return this;
    }

    /** Command CRIU executes after a successful restore. */
    public Builder execCommand(String... command) {
      return execCommand(List.of(command));
    }

    /** CRIU's own limit on freezing the tree; 0 keeps CRIU's default. */
    public Builder freezeTimeoutSeconds(int value) {
      if (value < 0) {
        throw new IllegalArgumentException("freezeTimeoutSeconds < 0: " + value);
      }
      this.freezeTimeoutSeconds = value;
      return this;
    }

    /** Freeze through this cgroup instead of ptrace. */
    public Builder freezeCgroup(String value) {
      this.freezeCgroup = value;
      return this;
    }

    /** Hand the master of an orphaned pty to the notifier on restore. */
    public Builder orphanPtsMaster(boolean value) {
      this.orphanPtsMaster = value;
      return this;
    }

    /** Run CRIU in unprivileged mode (CRIU 3.18+). */
    public Builder unprivileged(boolean value) {
      this.unprivileged = value;
      return this;
    }

    /** Allow Unix sockets connected to peers outside the tree. */
    public Builder externalUnixSockets(boolean value) {
      this.externalUnixSockets = value;
      return this;
    }

    /** Checkpoint established TCP connections. */
    public Builder tcpEstablished(boolean value) {
      this.tcpEstablished = value;
      return this;
    }

    /** Skip TCP connections that are not yet accepted. */
    public Builder tcpSkipInFlight(boolean value) {
      this.tcpSkipInFlight = value;
      return this;
    }

    /** Close established TCP connections on restore. */
    public Builder tcpClose(boolean value) {
      this.tcpClose = value;
      return this;
    }

    /** Allow device files that cannot be reopened by path. */
    public Builder evasiveDevices(boolean value) {
      this.evasiveDevices = value;
      return this;
    }

    /** Checkpoint file locks. */
    public Builder fileLocks(boolean value) {
      this.fileLocks = value;
      return this;
    }

    /** Allow link remapping of unlinked-but-open files. */
    public Builder linkRemap(boolean value) {
      this.linkRemap = value;
      return this;
    }

    /** Largest unlinked file CRIU copies into the images, in bytes; -1 keeps CRIU's default. */
    public Builder ghostLimit(long value) {
      if (value < -1 || value > 0xffffffffL) {
        throw new IllegalArgumentException("ghostLimit out of range: " + value);
      }
      this.ghostLimit = value;
      return this;
    }

    /** Force resolving inotify/fsnotify watch names. */
    public Builder forceIrmap(boolean value) {
      this.forceIrmap = value;
      return this;
    }

    /** Where to look for inotify watch targets. Replaces earlier values. */
    public Builder irmapScanPaths(List<String> value) {
      this.irmapScanPaths = new ArrayList<>(Objects.requireNonNull(value, "irmapScanPaths"));
      return this;
    }

    /** Adds one value to {@link CriuOptions#irmapScanPaths()}. */
    public Builder addIrmapScanPath(String value) {
      this.irmapScanPaths.add(Objects.requireNonNull(value, "irmapScanPaths"));
      return this;
    }

    /** Descriptors of this process handed to CRIU as inherited resources (restore). Replaces earlier values. */
    public Builder inheritedFds(List<InheritedFd> value) {
      this.inheritedFds = new ArrayList<>(Objects.requireNonNull(value, "inheritedFds"));
      return this;
    }

    /** Adds one value to {@link CriuOptions#inheritedFds()}. */
    public Builder addInheritedFd(InheritedFd value) {
      this.inheritedFds.add(Objects.requireNonNull(value, "inheritedFds"));
      return this;
    }

    /** --external specifications. Replaces earlier values. */
    public Builder externals(List<String> value) {
      this.externals = new ArrayList<>(Objects.requireNonNull(value, "externals"));
      return this;
    }

    /** Adds one value to {@link CriuOptions#externals()}. */
    public Builder addExternal(String value) {
      this.externals.add(Objects.requireNonNull(value, "externals"));
      return this;
    }

    /** Skip the file permission check on restore (CRIU 3.18+). */
    public Builder skipFileRwxCheck(boolean value) {
      this.skipFileRwxCheck = value;
      return this;
    }

    /** Root directory of the restored tree. */
    public Builder root(String value) {
      this.root = value;
      return this;
    }

    /** Treat mounts from outside the mount namespace as external. */
    public Builder autoExternalMounts(boolean value) {
      this.autoExternalMounts = value;
      return this;
    }

    /** Allow external shared mounts. */
    public Builder externalSharing(boolean value) {
      this.externalSharing = value;
      return this;
    }

    /** Allow external slave mounts. */
    public Builder externalMasters(boolean value) {
      this.externalMasters = value;
      return this;
    }

    /** Mount points to ignore. Replaces earlier values. */
    public Builder skipMounts(List<String> value) {
      this.skipMounts = new ArrayList<>(Objects.requireNonNull(value, "skipMounts"));
      return this;
    }

    /** Adds one value to {@link CriuOptions#skipMounts()}. */
    public Builder addSkipMount(String value) {
      this.skipMounts.add(Objects.requireNonNull(value, "skipMounts"));
      return this;
    }

    /** File systems CRIU may dump the contents of. Replaces earlier values. */
    public Builder enableFilesystems(List<String> value) {
      this.enableFilesystems = new ArrayList<>(Objects.requireNonNull(value, "enableFilesystems"));
      return this;
    }

    /** Adds one value to {@link CriuOptions#enableFilesystems()}. */
    public Builder addEnableFilesystem(String value) {
      this.enableFilesystems.add(Objects.requireNonNull(value, "enableFilesystems"));
      return this;
    }

    /** External mount mappings, key to value (old form of externals). Replaces earlier values. */
    public Builder externalMounts(Map<String, String> value) {
      this.externalMounts = new LinkedHashMap<>(Objects.requireNonNull(value, "externalMounts"));
      return this;
    }

    /** Use the old mount-namespace restore engine (CRIU 3.17+). */
    public Builder mountNamespaceCompatMode(boolean value) {
      this.mountNamespaceCompatMode = value;
      return this;
    }

    /** LSM profile to restore with. */
    public Builder lsmProfile(String value) {
      this.lsmProfile = value;
      return this;
    }

    /** LSM mount context to restore with (CRIU 3.16+). */
    public Builder lsmMountContext(String value) {
      this.lsmMountContext = value;
      return this;
    }

    /** Namespaces (CLONE_NEWNET only) to create empty on restore. */
    public Builder emptyNamespaces(int value) {
      if (value < 0) {
        throw new IllegalArgumentException("emptyNamespaces < 0: " + value);
      }
      this.emptyNamespaces = value;
      return this;
    }

    /** Existing namespaces to restore into. Replaces earlier values. */
    public Builder joinNamespaces(List<JoinNamespace> value) {
      this.joinNamespaces = new ArrayList<>(Objects.requireNonNull(value, "joinNamespaces"));
      return this;
    }

    /** Adds one value to {@link CriuOptions#joinNamespaces()}. */
    public Builder addJoinNamespace(JoinNamespace value) {
      this.joinNamespaces.add(Objects.requireNonNull(value, "joinNamespaces"));
      return this;
    }

    /** Ignore sysctls that cannot be restored. */
    public Builder weakSysctls(boolean value) {
      this.weakSysctls = value;
      return this;
    }

    /** How to lock the network during dump and restore; null keeps CRIU's default. */
    public Builder networkLock(NetworkLockMethod value) {
      this.networkLock = value;
      return this;
    }

    /** How CRIU handles cgroups; null keeps CRIU's default. */
    public Builder manageCgroups(CgroupMode value) {
      this.manageCgroups = value;
      return this;
    }

    /** Cgroup root remapping. Replaces earlier values. */
    public Builder cgroupRoots(List<CgroupRoot> value) {
      this.cgroupRoots = new ArrayList<>(Objects.requireNonNull(value, "cgroupRoots"));
      return this;
    }

    /** Adds one value to {@link CriuOptions#cgroupRoots()}. */
    public Builder addCgroupRoot(CgroupRoot value) {
      this.cgroupRoots.add(Objects.requireNonNull(value, "cgroupRoots"));
      return this;
    }

    /** Cgroup properties to restore (YAML). */
    public Builder cgroupProperties(String value) {
      this.cgroupProperties = value;
      return this;
    }

    /** File with cgroup properties to restore. */
    public Builder cgroupPropertiesFile(String value) {
      this.cgroupPropertiesFile = value;
      return this;
    }

    /** Controllers whose properties are dumped. Replaces earlier values. */
    public Builder cgroupDumpControllers(List<String> value) {
      this.cgroupDumpControllers = new ArrayList<>(Objects.requireNonNull(value, "cgroupDumpControllers"));
      return this;
    }

    /** Adds one value to {@link CriuOptions#cgroupDumpControllers()}. */
    public Builder addCgroupDumpController(String value) {
      this.cgroupDumpControllers.add(Objects.requireNonNull(value, "cgroupDumpControllers"));
      return this;
    }

    /** Where CRIU mounts cgroup controllers. */
    public Builder cgroupYard(String value) {
      this.cgroupYard = value;
      return this;
    }

    /** Send pages to a page server instead of the images directory. */
    public Builder pageServer(PageServerTarget value) {
      this.pageServer = value;
      return this;
    }

    /** Parent images directory, relative to the images directory (pre-copy). */
    public Builder parentImages(String value) {
      this.parentImages = value;
      return this;
    }

    /** Track dirty pages for the next iteration. */
    public Builder trackMemory(boolean value) {
      this.trackMemory = value;
      return this;
    }

    /** Punch holes in parent images that this dump supersedes. */
    public Builder autoDedup(boolean value) {
      this.autoDedup = value;
      return this;
    }

    /** Leave pages to a lazy-pages server (post-copy). */
    public Builder lazyPages(boolean value) {
      this.lazyPages = value;
      return this;
    }

    /** How pre-dump reads memory; null keeps CRIU's default (SPLICE). */
    public Builder preDumpMode(PreDumpMode value) {
      this.preDumpMode = value;
      return this;
    }

    /** cpu_cap bit mask; -1 keeps CRIU's default. */
    public Builder cpuCapabilities(int value) {
      this.cpuCapabilities = value;
      return this;
    }

    /** Encrypt page-server traffic with TLS. */
    public Builder tls(boolean value) {
      this.tls = value;
      return this;
    }

    /** CA certificate (PEM path). */
    public Builder tlsCaCertificate(String value) {
      this.tlsCaCertificate = value;
      return this;
    }

    /** CA revocation list (PEM path). */
    public Builder tlsCaRevocationList(String value) {
      this.tlsCaRevocationList = value;
      return this;
    }

    /** Own certificate (PEM path). */
    public Builder tlsCertificate(String value) {
      this.tlsCertificate = value;
      return this;
    }

    /** Own private key (PEM path). */
    public Builder tlsKey(String value) {
      this.tlsKey = value;
      return this;
    }

    /** Do not check the peer certificate's common name. */
    public Builder tlsNoCnVerify(boolean value) {
      this.tlsNoCnVerify = value;
      return this;
    }

    /** CRIU configuration file parsed around these options. */
    public Builder configFile(String value) {
      this.configFile = value;
      return this;
    }

    /** Where CRIU writes its log and statistics; default: the images directory. */
    public Builder workDir(Path value) {
      this.workDir = value;
      return this;
    }

    public CriuOptions build() {
      return new CriuOptions(this);
    }
  }
}
