// Handle (AnyEvent::Handle): buffered, event-driven stream I/O with typed read and write queues and TLS. Lands with its own issue.
//
// This module is not implemented yet; it has no public API until its issue lands.
