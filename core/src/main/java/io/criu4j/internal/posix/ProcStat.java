package io.criu4j.internal.posix;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.OptionalLong;

/** Reading {@code /proc/PID/stat}. Thread-safe; stateless. */
public final class ProcStat {
  private ProcStat() {}

  /**
   * The start time of {@code pid} (field 22 of {@code PROC/PID/stat}, clock ticks after boot),
   * which tells a process apart from a later one that got the same pid; empty if no such
   * process exists.
   *
   * @throws IOException if the stat file exists but cannot be read or parsed
   */
  public static OptionalLong startTime(Path proc, long pid) throws IOException {
    String stat;
    try {
      stat = Files.readString(proc.resolve(Long.toString(pid)).resolve("stat"),
          StandardCharsets.US_ASCII);
    } catch (NoSuchFileException e) {
      return OptionalLong.empty();
    }
    // The command name may hold spaces and parentheses: fields count from the last ')'.
    int close = stat.lastIndexOf(')');
    String[] f = close < 0 || close + 2 > stat.length() ? new String[0]
        : stat.substring(close + 2).trim().split(" ");
    // After "pid (comm) ": state is field 3, so field 22 is at index 19.
    if (f.length < 20) {
      throw new IOException("unexpected " + proc + "/" + pid + "/stat: " + stat);
    }
    try {
      return OptionalLong.of(Long.parseLong(f[19]));
    } catch (NumberFormatException e) {
      throw new IOException("unexpected " + proc + "/" + pid + "/stat: " + stat, e);
    }
  }
}
