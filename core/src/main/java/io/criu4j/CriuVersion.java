package io.criu4j;

import java.util.Comparator;
import java.util.Objects;

/**
 * A CRIU version as reported by CRIU's VERSION request.
 *
 * @param major major number, e.g. 4
 * @param minor minor number, e.g. 1
 * @param sublevel sublevel, e.g. 1 for 4.1.1; 0 if CRIU reported none
 * @param extra extra number; 0 if none
 * @param gitId git id of a development build, or {@code null}
 * @param name release name, or {@code null}
 * @since 0.1
 */
public record CriuVersion(int major, int minor, int sublevel, int extra, String gitId, String name)
    implements Comparable<CriuVersion> {

  public CriuVersion {
    if (major < 0 || minor < 0 || sublevel < 0) {
      throw new IllegalArgumentException("negative version: " + major + "." + minor + "." + sublevel);
    }
  }

  /** A plain release version. */
  public static CriuVersion of(int major, int minor, int sublevel) {
    return new CriuVersion(major, minor, sublevel, 0, null, null);
  }

  /** Parses {@code "4.1"} or {@code "4.1.1"}. */
  public static CriuVersion parse(String text) {
    String[] parts = text.strip().split("\\.");
    try {
      if (parts.length < 2 || parts.length > 3) {
        throw new NumberFormatException();
      }
      return of(Integer.parseInt(parts[0]), Integer.parseInt(parts[1]),
          parts.length == 3 ? Integer.parseInt(parts[2]) : 0);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("not a CRIU version: '" + text + "'");
    }
  }

  /** True if this version is {@code major.minor.sublevel} or newer. */
  public boolean isAtLeast(int major, int minor, int sublevel) {
    return compareTo(of(major, minor, sublevel)) >= 0;
  }

  /**
   * Size in bytes of CRIU's page-server request header: 24 before 4.2, 32 from 4.2 on. Peers
   * with different sizes cannot exchange pages.
   */
  public int pageServerHeaderSize() {
    return isAtLeast(4, 2, 0) ? 32 : 24;
  }

  @Override
  public int compareTo(CriuVersion o) {
    int c = Integer.compare(major, o.major);
    if (c == 0) {
      c = Integer.compare(minor, o.minor);
    }
    if (c == 0) {
      c = Integer.compare(sublevel, o.sublevel);
    }
    if (c == 0) {
      c = Integer.compare(extra, o.extra);
    }
    if (c == 0) {
      // Consistent with equals: a development build sorts after the release it grew from.
      c = Objects.compare(gitId, o.gitId, Comparator.nullsFirst(Comparator.naturalOrder()));
    }
    return c;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof CriuVersion v && major == v.major && minor == v.minor
        && sublevel == v.sublevel && extra == v.extra && Objects.equals(gitId, v.gitId);
  }

  @Override
  public int hashCode() {
    return Objects.hash(major, minor, sublevel, extra, gitId);
  }

  @Override
  public String toString() {
    String s = major + "." + minor + (sublevel != 0 ? "." + sublevel : "");
    return gitId != null ? s + " (" + gitId + ")" : s;
  }
}
