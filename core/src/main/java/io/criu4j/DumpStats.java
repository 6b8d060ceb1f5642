package io.criu4j;

/**
 * The statistics CRIU wrote for one dump or pre-dump ({@code stats-dump}). Times are in
 * microseconds, counts in pages.
 *
 * @since 0.1
 */
public record DumpStats(
    long freezingTimeMicros,
    long frozenTimeMicros,
    long memdumpTimeMicros,
    long memwriteTimeMicros,
    long pagesScanned,
    long pagesSkippedParent,
    long pagesWritten,
    long pagesLazy) {

  /** Statistics of an operation for which CRIU wrote none. */
  public static final DumpStats NONE = new DumpStats(0, 0, 0, 0, 0, 0, 0, 0);
}
