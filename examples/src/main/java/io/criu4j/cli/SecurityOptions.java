package io.criu4j.cli;

import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.security.auth.x500.X500Principal;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/**
 * The link-security options shared by {@code agent} and {@code migrate}: TLS by default, plain
 * TCP only with {@code --insecure-plain}.
 */
final class SecurityOptions {
  static final String HOW_TO_CREATE = "create a CA and host certificates with "
      + "scripts/certs.sh (scripts/certs.sh init DIR; scripts/certs.sh issue DIR NAME HOST...)";

  @Option(names = "--tls-cert", paramLabel = "PEM",
      description = "this host's certificate (chain), for tls:// addresses")
  Path certificate;

  @Option(names = "--tls-key", paramLabel = "PEM",
      description = "this host's private key (PKCS#8), for tls:// addresses")
  Path key;

  @Option(names = "--tls-ca", paramLabel = "PEM",
      description = "the CA certificate peers must chain up to, for tls:// addresses")
  Path ca;

  @Option(names = "--allow-peer", paramLabel = "SUBJECT",
      description = "accept only a peer whose certificate subject is SUBJECT, e.g. CN=node-a "
          + "(repeatable; default: any certificate the CA signed)")
  List<String> allowedPeers = new ArrayList<>();

  @Option(names = "--insecure-plain",
      description = "allow a plain tcp:// address: no authentication, no encryption "
          + "(trusted networks and tests only)")
  boolean insecurePlain;

  /**
   * Checks the options against {@code address} (given as {@code option}) and returns what they
   * mean. A {@code tcp://} address without {@code --insecure-plain} is refused, with a pointer
   * to {@code scripts/certs.sh}.
   */
  LinkSecurity resolve(CommandLine cl, String option, URI address) {
    String scheme = address.getScheme();
    boolean tls = "tls".equals(scheme);
    boolean anyTls = certificate != null || key != null || ca != null
        || !allowedPeers.isEmpty();
    if ("tcp".equals(scheme)) {
      if (!insecurePlain) {
        throw new CommandLine.ParameterException(cl, option + " " + address + ": plain TCP "
            + "is refused: it neither authenticates the peer nor encrypts the process's "
            + "memory. Use tls://" + address.getAuthority() + " with --tls-cert, --tls-key "
            + "and --tls-ca (" + HOW_TO_CREATE + "), or add --insecure-plain on a trusted "
            + "network");
      }
      if (anyTls) {
        throw new CommandLine.ParameterException(cl, "--tls-cert, --tls-key, --tls-ca and "
            + "--allow-peer apply to tls:// addresses, not to " + address);
      }
      return LinkSecurity.insecurePlainTcp();
    }
    if (insecurePlain) {
      throw new CommandLine.ParameterException(cl, "--insecure-plain applies to tcp:// "
          + "addresses only, not to " + address);
    }
    if (!tls) {
      if (anyTls) {
        throw new CommandLine.ParameterException(cl, "--tls-cert, --tls-key, --tls-ca and "
            + "--allow-peer apply to tls:// addresses, not to " + address);
      }
      return LinkSecurity.NONE;
    }
    List<String> missing = new ArrayList<>();
    if (certificate == null) {
      missing.add("--tls-cert");
    }
    if (key == null) {
      missing.add("--tls-key");
    }
    if (ca == null) {
      missing.add("--tls-ca");
    }
    if (!missing.isEmpty()) {
      throw new CommandLine.ParameterException(cl, option + " " + address + " needs "
          + String.join(", ", missing) + " (mutual TLS: this host's certificate and key, "
          + "and the CA that signed its peers'); " + HOW_TO_CREATE);
    }
    for (Path p : List.of(certificate, key, ca)) {
      if (!Files.isReadable(p)) {
        throw new CommandLine.ParameterException(cl, "cannot read " + p + "; "
            + HOW_TO_CREATE);
      }
    }
    for (String subject : allowedPeers) {
      try {
        new X500Principal(subject);
      } catch (IllegalArgumentException e) {
        throw new CommandLine.ParameterException(cl, "--allow-peer '" + subject
            + "' is not a certificate subject such as CN=node-a");
      }
    }
    return LinkSecurity.tls(certificate, key, ca, allowedPeers);
  }
}
