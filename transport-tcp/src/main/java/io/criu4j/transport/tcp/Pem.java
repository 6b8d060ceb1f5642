package io.criu4j.transport.tcp;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.InvalidKeySpecException;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

/**
 * Reads X.509 certificates and unencrypted PKCS#8 private keys from PEM files, as written by
 * {@code scripts/certs.sh} or {@code openssl genpkey}. Every failure is an
 * {@link IllegalArgumentException} naming the file, because a bad key file is a configuration
 * mistake that no retry fixes.
 *
 * <p>Thread-safe; stateless.
 */
final class Pem {
  private static final String PKCS8_BEGIN = "-----BEGIN PRIVATE KEY-----";
  private static final String PKCS8_END = "-----END PRIVATE KEY-----";
  /** Key algorithms tried in turn; a PKCS#8 blob names its algorithm only as an OID. */
  private static final String[] KEY_ALGORITHMS = {"EC", "RSA", "EdDSA", "RSASSA-PSS"};

  private Pem() {}

  /** Every certificate in {@code file}, in file order (leaf first, for a chain). */
  static List<X509Certificate> certificates(Path file) {
    byte[] bytes = read(file, "certificate");
    List<X509Certificate> certificates = new ArrayList<>();
    try (InputStream in = new ByteArrayInputStream(bytes)) {
      for (Certificate certificate :
          CertificateFactory.getInstance("X.509").generateCertificates(in)) {
        certificates.add((X509Certificate) certificate);
      }
    } catch (CertificateException | IOException e) {
      throw new IllegalArgumentException(
          "cannot read certificates from " + file + ": " + e.getMessage(), e);
    }
    if (certificates.isEmpty()) {
      throw new IllegalArgumentException("no certificate in " + file
          + " (expected PEM blocks '-----BEGIN CERTIFICATE-----')");
    }
    return List.copyOf(certificates);
  }

  /** The unencrypted PKCS#8 private key in {@code file}. */
  static PrivateKey privateKey(Path file) {
    String text = new String(read(file, "private key"), StandardCharsets.US_ASCII);
    int begin = text.indexOf(PKCS8_BEGIN);
    int end = text.indexOf(PKCS8_END);
    if (begin < 0 || end < begin) {
      String hint = text.contains("ENCRYPTED PRIVATE KEY")
          ? "encrypted keys are not supported; decrypt it with "
              + "'openssl pkcs8 -in KEY -out PLAIN' and protect the file by its permissions"
          : text.contains("-----BEGIN ")
              ? "convert it with 'openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pkcs8'"
              : "not a PEM file";
      throw new IllegalArgumentException("no PKCS#8 private key ('" + PKCS8_BEGIN + "') in "
          + file + ": " + hint);
    }
    byte[] der;
    try {
      der = Base64.getMimeDecoder().decode(text.substring(begin + PKCS8_BEGIN.length(), end));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("malformed private key in " + file, e);
    }
    PKCS8EncodedKeySpec spec = new PKCS8EncodedKeySpec(der);
    for (String algorithm : KEY_ALGORITHMS) {
      try {
        return KeyFactory.getInstance(algorithm).generatePrivate(spec);
      } catch (InvalidKeySpecException e) {
        // not this algorithm; try the next
      } catch (GeneralSecurityException e) {
        // algorithm not available in this JVM
      }
    }
    throw new IllegalArgumentException("unsupported private key in " + file
        + " (supported: EC, RSA, Ed25519/Ed448, RSASSA-PSS)");
  }

  private static byte[] read(Path file, String what) {
    try {
      return Files.readAllBytes(file);
    } catch (IOException e) {
      throw new IllegalArgumentException("cannot read " + what + " file " + file + ": " + e, e);
    }
  }
}
