package io.criu4j.cli;

import io.criu4j.CriuOptions;
import io.criu4j.MigrationPhase;
import java.time.Duration;
import java.time.format.DateTimeParseException;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** Parsers of the command-line values that picocli does not know. */
final class Converters {
  private static final Pattern SIZE = Pattern.compile("(\\d+)\\s*([kKmMgGtT]?)(i?[bB])?");
  private static final Pattern DURATION = Pattern.compile("(\\d+(?:\\.\\d+)?)\\s*(ms|s|m|min|h)");

  private Converters() {}

  /** {@code 268435456}, {@code 256M}, {@code 256MiB}, {@code 1G}: powers of 1024. */
  static long parseSize(String text) {
    Matcher m = SIZE.matcher(text.trim());
    if (!m.matches()) {
      throw new TypeConversionException("not a size: '" + text + "' (e.g. 512M, 2G)");
    }
    long n = Long.parseLong(m.group(1));
    int shift = switch (m.group(2).toUpperCase(Locale.ROOT)) {
      case "K" -> 10;
      case "M" -> 20;
      case "G" -> 30;
      case "T" -> 40;
      default -> 0;
    };
    if (n > (Long.MAX_VALUE >> shift)) {
      throw new TypeConversionException("size too large: '" + text + "'");
    }
    return n << shift;
  }

  /** {@code 500ms}, {@code 30s}, {@code 5m}, {@code 1.5h}, or ISO-8601 {@code PT30S}. */
  static Duration parseDuration(String text) {
    String t = text.trim();
    Matcher m = DURATION.matcher(t.toLowerCase(Locale.ROOT));
    Duration d;
    if (m.matches()) {
      double value = Double.parseDouble(m.group(1));
      double unitMillis = switch (m.group(2)) {
        case "ms" -> 1;
        case "s" -> 1_000;
        case "m", "min" -> 60_000;
        default -> 3_600_000;
      };
      d = Duration.ofNanos(Math.round(value * unitMillis * 1_000_000));
    } else {
      try {
        d = Duration.parse(t);
      } catch (DateTimeParseException e) {
        throw new TypeConversionException("not a duration: '" + text
            + "' (e.g. 500ms, 30s, 5m, PT2M)");
      }
    }
    if (d.isNegative() || d.isZero()) {
      throw new TypeConversionException("duration must be positive: '" + text + "'");
    }
    return d;
  }

  /** {@code PHASE=DURATION}, the phase case-insensitive with {@code -} or {@code _}. */
  static Map.Entry<MigrationPhase, Duration> parsePhaseTimeout(String text) {
    int eq = text.indexOf('=');
    if (eq <= 0) {
      throw new TypeConversionException("expected PHASE=DURATION, got '" + text
          + "' (e.g. final-dump=2m)");
    }
    String name = text.substring(0, eq).trim().toUpperCase(Locale.ROOT).replace('-', '_');
    MigrationPhase phase;
    try {
      phase = MigrationPhase.valueOf(name);
    } catch (IllegalArgumentException e) {
      throw new TypeConversionException("unknown phase '" + text.substring(0, eq) + "' (one of "
          + phaseNames() + ")");
    }
    return Map.entry(phase, parseDuration(text.substring(eq + 1)));
  }

  static String phaseNames() {
    StringBuilder sb = new StringBuilder();
    for (MigrationPhase p : MigrationPhase.values()) {
      sb.append(sb.length() == 0 ? "" : ", ")
          .append(p.name().toLowerCase(Locale.ROOT).replace('_', '-'));
    }
    return sb.toString();
  }

  static final class Size implements ITypeConverter<Long> {
    @Override
    public Long convert(String value) {
      return parseSize(value);
    }
  }

  static final class Time implements ITypeConverter<Duration> {
    @Override
    public Duration convert(String value) {
      return parseDuration(value);
    }
  }

  static final class PhaseTimeout implements ITypeConverter<Map.Entry<MigrationPhase, Duration>> {
    @Override
    public Map.Entry<MigrationPhase, Duration> convert(String value) {
      return parsePhaseTimeout(value);
    }
  }

  /** Enum names case-insensitive, {@code -} for {@code _}. */
  static final class CgroupMode implements ITypeConverter<CriuOptions.CgroupMode> {
    @Override
    public CriuOptions.CgroupMode convert(String value) {
      return enumValue(CriuOptions.CgroupMode.class, value);
    }
  }

  static final class NetworkLock implements ITypeConverter<CriuOptions.NetworkLockMethod> {
    @Override
    public CriuOptions.NetworkLockMethod convert(String value) {
      return enumValue(CriuOptions.NetworkLockMethod.class, value);
    }
  }

  static <E extends Enum<E>> E enumValue(Class<E> type, String value) {
    String name = value.trim().toUpperCase(Locale.ROOT).replace('-', '_');
    for (E e : type.getEnumConstants()) {
      if (e.name().equals(name)) {
        return e;
      }
    }
    StringBuilder names = new StringBuilder();
    for (E e : type.getEnumConstants()) {
      names.append(names.length() == 0 ? "" : ", ").append(e.name().toLowerCase(Locale.ROOT));
    }
    throw new TypeConversionException("'" + value + "' is not one of " + names);
  }
}
