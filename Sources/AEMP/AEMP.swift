// The node (AnyEvent::MP, ::Kernel, ::Transport): ports, kernel API, the AEMP transport and the global database. Lands with its own issue.
//
// This module is not implemented yet; it has no public API until its issue lands.
