package io.criu4j;

import io.criu4j.internal.criu.SwrkConnection;
import io.criu4j.internal.posix.Fd;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Routes CRIU's notification names to {@link Notifier} methods. */
final class NotifyDispatcher implements SwrkConnection.NotifyHandler {
  private static final Logger log = LoggerFactory.getLogger(NotifyDispatcher.class);
  private final Notifier notifier;

  NotifyDispatcher(Notifier notifier) {
    this.notifier = notifier;
  }

  @Override
  public List<String> notify(String script, int pid, List<Fd> fds) throws Exception {
    log.debug("CRIU notification {} (pid {})", script, pid);
    try {
      switch (script) {
        case "pre-dump" -> notifier.preDump();
        case "post-dump" -> notifier.postDump();
        case "network-lock" -> notifier.networkLock();
        case "network-unlock" -> notifier.networkUnlock();
        case "query-ext-files" -> {
          List<String> externals = notifier.queryExternalFiles();
          return externals == null ? List.of() : List.copyOf(externals);
        }
        case "setup-namespaces" -> notifier.setupNamespaces(pid);
        case "post-setup-namespaces" -> notifier.postSetupNamespaces();
        case "pre-restore" -> notifier.preRestore();
        case "post-restore" -> notifier.postRestore(pid);
        case "pre-resume" -> notifier.preResume();
        case "post-resume" -> notifier.postResume();
        case "orphan-pts-master" -> {
          if (fds.isEmpty()) {
            throw new ProtocolException("orphan-pts-master notification without a descriptor");
          }
          notifier.orphanPtsMaster(fds.get(0).release());
        }
        case "status-ready" -> notifier.statusReady();
        case "pre-stream" -> notifier.preStream();
        default -> log.info("acknowledging unknown CRIU notification '{}'", script);
      }
      return null;
    } finally {
      for (Fd fd : fds) {
        fd.close();
      }
    }
  }
}
