package io.criu4j;

import java.nio.file.Path;

/**
 * Outcome of a successful dump or pre-dump.
 *
 * @param imagesDir where the images are
 * @param stats CRIU's statistics, {@link DumpStats#NONE} if it wrote none
 * @param logFile CRIU's log of the operation, or {@code null}
 * @since 0.1
 */
public record DumpResult(Path imagesDir, DumpStats stats, Path logFile) {}
