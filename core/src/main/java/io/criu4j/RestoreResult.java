package io.criu4j;

import java.nio.file.Path;

/**
 * Outcome of a successful restore.
 *
 * @param pid the restored root task's pid, as seen from this process's PID namespace
 * @param logFile CRIU's log of the restore, or {@code null}
 * @since 0.1
 */
public record RestoreResult(int pid, Path logFile) {}
