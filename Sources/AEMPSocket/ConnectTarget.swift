/// One place ``tcpConnect`` may try: an IP address and port, or a Unix-domain socket path.
public enum ConnectTarget: Hashable, Sendable {
    /// A TCP endpoint.
    case ip(IPAddress, port: Int)
    /// A Unix-domain stream socket (Perl: host `unix/`, the path as the port).
    case unix(path: String)
}
