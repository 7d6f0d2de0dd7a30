// DataConn (AnyEvent::MP::DataConn): raw data connections between nodes over the node's listener. Lands with its own issue.
//
// This module is not implemented yet; it has no public API until its issue lands.
