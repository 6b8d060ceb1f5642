package io.criu4j.testing;

import io.criu4j.Notifier;
import io.criu4j.internal.posix.Fd;
import java.util.ArrayList;
import java.util.List;

/**
 * A {@link Notifier} that records every notification, in order, by CRIU's name for it
 * ({@code "pre-dump"}, {@code "post-restore(77)"} for the points that carry a pid), with the
 * thread it ran on, and lets each one proceed. Closes the descriptor of
 * {@code orphan-pts-master}, which is the notifier's to close. Subclass and override a method
 * to veto or block at one point.
 *
 * <p>Thread-safe.
 */
public class RecordingNotifier implements Notifier {
  private final List<String> events = new ArrayList<>();
  private final List<Integer> pids = new ArrayList<>();
  private final List<Thread> threads = new ArrayList<>();

  /** The notifications so far, as {@code "name"} or {@code "name(pid)"}. */
  public synchronized List<String> events() {
    return List.copyOf(events);
  }

  /** The notifications so far, names only, without pids. */
  public synchronized List<String> names() {
    return events.stream().map(e -> e.replaceFirst("\\(.*\\)$", "")).toList();
  }

  /** The pids that came with pid-carrying notifications, in order. */
  public synchronized List<Integer> pids() {
    return List.copyOf(pids);
  }

  /** The thread of each notification, in order. */
  public synchronized List<Thread> threads() {
    return List.copyOf(threads);
  }

  protected synchronized void record(String name) {
    events.add(name);
    threads.add(Thread.currentThread());
  }

  protected synchronized void record(String name, int pid) {
    record(name + "(" + pid + ")");
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
    Fd.adopt(fd).close(); // ours to close
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
