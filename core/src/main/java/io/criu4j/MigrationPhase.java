package io.criu4j;

/**
 * The phases of one live migration, in the order they run. Each has its own timeout
 * ({@link MigrationSession.Builder#phaseTimeout}); a phase that was skipped (pre-copy without
 * dirty-page tracking) reports no duration.
 *
 * @since 0.1
 */
public enum MigrationPhase {
  /** Both sides check pid, CRIU versions, features, CPU and space; nothing is frozen yet. */
  PREFLIGHT,
  /** Memory is copied while the tree keeps running (rounds of pre-dumps). */
  PRE_COPY,
  /** The tree is frozen and dumped; ends when CRIU reports the images complete (post-dump). */
  FINAL_DUMP,
  /** The source, still frozen, finishes shipping the images; the destination has them all. */
  TRANSFER,
  /** The destination restores the tree, which stays stopped until the commit. */
  RESTORE,
  /** The source is told to let go; the destination lets the restored tree run. */
  COMMIT,
  /**
   * Post-copy only: the tree runs on the destination while the rest of its memory arrives from
   * the still frozen original, on demand and in the background. A failure here stops the copy
   * and resumes the original.
   */
  POST_COPY,
  /** Connections, CRIU processes and staging directories are released. */
  CLEANUP
}
