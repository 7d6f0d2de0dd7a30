// Tests for AEMPDataConn land with the module itself.
