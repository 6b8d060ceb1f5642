package io.criu4j.it;

import io.criu4j.Notifier;
import java.util.ArrayList;
import java.util.List;

/**
 * Records every notification CRIU sends, in order, as {@code "name"} or {@code "name(pid)"}
 * for the points that carry a pid, and lets each one proceed. Thread-safe.
 */
class RecordingNotifier implements Notifier {
  private final List<String> events = new ArrayList<>();
  private final List<Integer> pids = new ArrayList<>();

  synchronized List<String> events() {
    return List.copyOf(events);
  }

  /** Names only, without pids. */
  synchronized List<String> names() {
    return events.stream().map(e -> e.replaceFirst("\\(.*\\)$", "")).toList();
  }

  /** The pids that came with pid-carrying notifications, in order. */
  synchronized List<Integer> pids() {
    return List.copyOf(pids);
  }

  synchronized void record(String name) {
    events.add(name);
  }

  synchronized void record(String name, int pid) {
    events.add(name + "(" + pid + ")");
    pids.add(pid);
  }

  @Override
  public void preDump() throws Exception {
    record("pre-dump");
  }

  @Override
  public void postDump() throws Exception {
    record("post-dump");
  }

  @Override
  public void networkLock() throws Exception {
    record("network-lock");
  }

  @Override
  public void networkUnlock() throws Exception {
    record("network-unlock");
  }

  @Override
  public List<String> queryExternalFiles() throws Exception {
    record("query-ext-files");
    return List.of();
  }

  @Override
  public void setupNamespaces(int pid) throws Exception {
    record("setup-namespaces", pid);
  }

  @Override
  public void postSetupNamespaces() throws Exception {
    record("post-setup-namespaces");
  }

  @Override
  public void preRestore() throws Exception {
    record("pre-restore");
  }

  @Override
  public void postRestore(int pid) throws Exception {
    record("post-restore", pid);
  }

  @Override
  public void preResume() throws Exception {
    record("pre-resume");
  }

  @Override
  public void postResume() throws Exception {
    record("post-resume");
  }

  @Override
  public void orphanPtsMaster(int fd) throws Exception {
    record("orphan-pts-master");
    io.criu4j.internal.posix.Fd.adopt(fd).close();
  }

  @Override
  public void statusReady() throws Exception {
    record("status-ready");
  }

  @Override
  public void preStream() throws Exception {
    record("pre-stream");
  }
}
