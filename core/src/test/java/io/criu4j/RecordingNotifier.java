package io.criu4j;

import io.criu4j.internal.posix.Native;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A {@link Notifier} that records each call as its method name (with the pid where there is
 * one) and the thread it ran on. Subclass and override to veto or block at one point.
 */
class RecordingNotifier implements Notifier {
  final List<String> calls = new CopyOnWriteArrayList<>();
  final List<Thread> threads = new CopyOnWriteArrayList<>();

  void record(String call) {
    calls.add(call);
    threads.add(Thread.currentThread());
  }

  @Override
  public void preDump() throws Exception {
    record("preDump");
  }

  @Override
  public void postDump() throws Exception {
    record("postDump");
  }

  @Override
  public void networkLock() throws Exception {
    record("networkLock");
  }

  @Override
  public void networkUnlock() throws Exception {
    record("networkUnlock");
  }

  @Override
  public List<String> queryExternalFiles() throws Exception {
    record("queryExternalFiles");
    return List.of();
  }

  @Override
  public void setupNamespaces(int pid) throws Exception {
    record("setupNamespaces " + pid);
  }

  @Override
  public void postSetupNamespaces() throws Exception {
    record("postSetupNamespaces");
  }

  @Override
  public void preRestore() throws Exception {
    record("preRestore");
  }

  @Override
  public void postRestore(int pid) throws Exception {
    record("postRestore " + pid);
  }

  @Override
  public void preResume() throws Exception {
    record("preResume");
  }

  @Override
  public void postResume() throws Exception {
    record("postResume");
  }

  @Override
  public void orphanPtsMaster(int fd) throws Exception {
    record("orphanPtsMaster");
    Native.libc().close(fd); // ours to close
  }

  @Override
  public void statusReady() throws Exception {
    record("statusReady");
  }

  @Override
  public void preStream() throws Exception {
    record("preStream");
  }
}
