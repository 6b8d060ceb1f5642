package io.criu4j;

import java.util.List;

/**
 * Callbacks for CRIU's notification points ("action scripts") during dump and restore. Every
 * method has a default that lets CRIU carry on, so implement only the points you care about.
 *
 * <p><b>Veto.</b> Returning normally tells CRIU to continue; throwing any exception vetoes: CRIU
 * is told the script failed and aborts (a vetoed {@link #postDump()} resumes the frozen tasks),
 * and the failed operation's {@link CriuException} carries the thrown exception as its cause.
 *
 * <p><b>Blocking.</b> Callbacks run on the thread that called the CRIU operation, while CRIU
 * waits. They may block as long as they need: no reply timeout runs meanwhile. This is how a
 * migration holds the source frozen in {@link #postDump()} until the destination has restored.
 *
 * <p>Notification names CRIU sends that are not listed here are acknowledged and logged.
 *
 * @since 0.1
 */
public interface Notifier {
  /** A notifier that lets every step proceed. */
  Notifier NONE = new Notifier() {};

  /** Before tasks are frozen for a dump. */
  default void preDump() throws Exception {}

  /** Images are complete and the tasks are still frozen; returning lets CRIU finish the dump. */
  default void postDump() throws Exception {}

  /** Before the network of a dumped network namespace is locked. */
  default void networkLock() throws Exception {}

  /** After the network of a dumped or restored network namespace is unlocked. */
  default void networkUnlock() throws Exception {}

  /**
   * CRIU asks for external files to add to the dump; return {@code --external} specifications
   * (such as {@code "file[abc]:/path"}), or an empty list.
   */
  default List<String> queryExternalFiles() throws Exception {
    return List.of();
  }

  /** Namespaces of the restored tree exist; {@code pid} is the root task's pid. */
  default void setupNamespaces(int pid) throws Exception {}

  /** After namespaces were set up. */
  default void postSetupNamespaces() throws Exception {}

  /** Before a restore starts. */
  default void preRestore() throws Exception {}

  /** The tree is restored but not yet running; {@code pid} is the root task's pid. */
  default void postRestore(int pid) throws Exception {}

  /** Just before the restored tasks resume. */
  default void preResume() throws Exception {}

  /** The restored tasks run. */
  default void postResume() throws Exception {}

  /**
   * The master side of an orphaned pseudo-terminal ({@code orphanPtsMaster} option). The
   * implementation owns {@code fd} and must close it.
   */
  default void orphanPtsMaster(int fd) throws Exception {}

  /** A server CRIU started (such as a lazy-pages server) is ready. */
  default void statusReady() throws Exception {}

  /** Before image streaming starts (command-line streaming only). */
  default void preStream() throws Exception {}
}
