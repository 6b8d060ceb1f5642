package io.criu4j.spi;

import io.criu4j.internal.transport.mem.MemTransport;
import java.net.URI;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;
import java.util.Set;
import java.util.TreeSet;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Finds the {@link Transport} for a URI scheme, and creates the in-memory transport.
 *
 * <p>Discovery uses {@link ServiceLoader} to find {@link TransportProvider}s, first with the
 * thread's context class loader and then with the loader of this class, and picks the available
 * provider with the highest {@linkplain TransportProvider#priority() priority}. Providers that
 * fail to load are logged and skipped. The in-memory transport ({@code mem://name}) is built in.
 * Prefer the explicit factories ({@code TcpTransport.create()}, {@code UnixTransport.create()})
 * when the scheme is known in advance: they fail at compile time rather than at run time.
 *
 * <p>Thread-safe; stateless.
 *
 * @since 0.1
 */
public final class Transports {
  private static final Logger log = LoggerFactory.getLogger(Transports.class);

  /** Artifacts that provide the schemes criu4j knows about, for the not-found message. */
  private static final Map<String, String> KNOWN_ARTIFACTS = Map.of(
      "tcp", "io.criu4j:criu4j-transport-tcp",
      "tls", "io.criu4j:criu4j-transport-tcp",
      "unix", "io.criu4j:criu4j-transport-unix");

  private static final int MAX_LOAD_ERRORS = 32;

  private Transports() {}

  /**
   * The transport that serves {@code address}'s scheme.
   *
   * @throws IllegalArgumentException if {@code address} has no scheme, or no transport is known
   *     for its scheme; the message names the URI
   * @throws IllegalStateException if the scheme belongs to a criu4j transport module that is not
   *     on the class path (the message names the artifact to add), or whose transport is not
   *     available on this platform
   */
  public static Transport forUri(URI address) {
    Objects.requireNonNull(address, "address");
    if (address.getScheme() == null) {
      throw new IllegalArgumentException(
          "transport address has no scheme: '" + address + "' (expected e.g. tcp://host:port)");
    }
    return find(address.getScheme().toLowerCase(Locale.ROOT), " (address " + address + ")");
  }

  /**
   * The transport that serves {@code scheme}, such as {@code "tcp"}; case-insensitive.
   *
   * @throws IllegalArgumentException if no transport is known for {@code scheme}
   * @throws IllegalStateException as for {@link #forUri(URI)}
   */
  public static Transport forScheme(String scheme) {
    Objects.requireNonNull(scheme, "scheme");
    return find(scheme.toLowerCase(Locale.ROOT), "");
  }

  /**
   * The in-memory transport: {@code mem://name} addresses, visible within this JVM, connections
   * backed by bounded buffers with the same blocking, half-close, close and timeout behaviour as
   * the socket transports. Useful in tests. Listener names are JVM-wide, like port numbers.
   */
  public static Transport inMemory() {
    return MemTransport.INSTANCE;
  }

  private static Transport find(String scheme, String context) {
    if (scheme.equals(MemTransport.SCHEME)) {
      return MemTransport.INSTANCE;
    }
    List<TransportProvider> providers = loadProviders();
    TransportProvider best = null;
    boolean unavailable = false;
    for (TransportProvider provider : providers) {
      if (!scheme.equals(safeScheme(provider))) {
        continue;
      }
      if (!safeIsAvailable(provider)) {
        unavailable = true;
        continue;
      }
      if (best == null || provider.priority() > best.priority()) {
        best = provider;
      }
    }
    if (best != null) {
      return best.create();
    }
    if (unavailable) {
      throw new IllegalStateException("transport for scheme '" + scheme + "'" + context
          + " is not available on this platform (" + System.getProperty("os.name") + ")");
    }
    String artifact = KNOWN_ARTIFACTS.get(scheme);
    if (artifact != null) {
      throw new IllegalStateException("no transport for scheme '" + scheme + "'" + context
          + ": add " + artifact + " to the class path");
    }
    Set<String> installed = new TreeSet<>();
    installed.add(MemTransport.SCHEME);
    for (TransportProvider provider : providers) {
      String s = safeScheme(provider);
      if (s != null) {
        installed.add(s);
      }
    }
    throw new IllegalArgumentException("no transport for scheme '" + scheme + "'" + context
        + "; schemes on the class path: " + String.join(", ", installed));
  }

  private static List<TransportProvider> loadProviders() {
    Set<ClassLoader> loaders = new LinkedHashSet<>();
    ClassLoader context = Thread.currentThread().getContextClassLoader();
    if (context != null) {
      loaders.add(context);
    }
    loaders.add(Transports.class.getClassLoader());
    List<TransportProvider> providers = new ArrayList<>();
    Set<String> seen = new LinkedHashSet<>();
    for (ClassLoader loader : loaders) {
      Iterator<TransportProvider> it =
          ServiceLoader.load(TransportProvider.class, loader).iterator();
      // A broken registration makes the iterator throw for that entry only; the bound stops a
      // pathological loader from making us loop forever.
      for (int errors = 0; errors < MAX_LOAD_ERRORS; ) {
        try {
          if (!it.hasNext()) {
            break;
          }
          TransportProvider provider = it.next();
          if (seen.add(provider.getClass().getName())) {
            providers.add(provider);
          }
        } catch (ServiceConfigurationError | RuntimeException | LinkageError e) {
          errors++;
          log.warn("skipping a transport provider that failed to load", e);
        }
      }
    }
    return providers;
  }

  private static String safeScheme(TransportProvider provider) {
    try {
      String scheme = provider.scheme();
      return scheme == null ? null : scheme.toLowerCase(Locale.ROOT);
    } catch (RuntimeException | LinkageError e) {
      log.warn("transport provider {} failed to report its scheme", provider.getClass(), e);
      return null;
    }
  }

  private static boolean safeIsAvailable(TransportProvider provider) {
    try {
      return provider.isAvailable();
    } catch (RuntimeException | LinkageError e) {
      log.warn("transport provider {} failed its availability check", provider.getClass(), e);
      return false;
    }
  }
}
