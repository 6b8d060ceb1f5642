package io.criu4j.transport.tcp;

import io.criu4j.spi.Transport;
import io.criu4j.testing.TransportContractTest;
import java.net.URI;
import java.util.List;

/** The TLS transport keeps the whole transport contract, over mutually authenticated TLS 1.3. */
class TlsTransportContractTest extends TransportContractTest {
  private static TlsTransport transport;

  @Override
  protected Transport transport() {
    synchronized (TlsTransportContractTest.class) {
      if (transport == null) {
        transport = TestCertificates.transport(TestCertificates.CA_A, "node",
            TestCertificates.CA_A).build();
      }
      return transport;
    }
  }

  @Override
  protected URI newListenUri() {
    return URI.create("tls://127.0.0.1:0");
  }

  @Override
  protected List<URI> malformedUris() {
    return List.of(
        URI.create("tls://127.0.0.1"),
        URI.create("tls://127.0.0.1:70000"),
        URI.create("tls:127.0.0.1:4000"),
        URI.create("tls:///path-only"),
        URI.create("tls://bad_host:4000"),
        URI.create("tls://127.0.0.1:4000/path"),
        URI.create("tls://user@127.0.0.1:4000"),
        URI.create("tcp://127.0.0.1:4000"));
  }
}
