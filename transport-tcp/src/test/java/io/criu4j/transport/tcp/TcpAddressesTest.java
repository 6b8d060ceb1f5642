package io.criu4j.transport.tcp;

import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** How TCP addresses are read from URIs and written back. */
@Timeout(value = 5, unit = SECONDS)
class TcpAddressesTest {

  @Test
  void ipv6AddressesAreWrittenInTheirShortestFormInBrackets() throws Exception {
    assertThat(format("::1", 4000)).isEqualTo("tcp://[::1]:4000");
    assertThat(format("::", 1)).isEqualTo("tcp://[::]:1");
    assertThat(format("2001:db8:0:0:1:0:0:1", 2)).isEqualTo("tcp://[2001:db8::1:0:0:1]:2");
    assertThat(format("2001:db8:1:1:1:1:0:1", 3)).isEqualTo("tcp://[2001:db8:1:1:1:1:0:1]:3");
    assertThat(format("fe80::1:0:0", 4)).isEqualTo("tcp://[fe80::1:0:0]:4");
  }

  @Test
  void ipv4AddressesAreWrittenAsDottedQuads() throws Exception {
    assertThat(format("10.0.0.7", 51234)).isEqualTo("tcp://10.0.0.7:51234");
  }

  @Test
  void bracketedIpv6HostsAreReadWithoutBrackets() {
    InetSocketAddress parsed = TcpAddresses.parse(URI.create("tcp://[::1]:4000"), false);

    assertThat(parsed.getHostString()).isEqualTo("::1");
    assertThat(parsed.getPort()).isEqualTo(4000);
  }

  @Test
  void aTrailingSlashIsTolerated() {
    assertThat(TcpAddresses.parse(URI.create("tcp://localhost:4000/"), false).getPort())
        .isEqualTo(4000);
  }

  private static String format(String ip, int port) throws Exception {
    return TcpAddresses.format(new InetSocketAddress(InetAddress.getByName(ip), port));
  }
}
