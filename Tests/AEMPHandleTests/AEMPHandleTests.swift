// Tests for AEMPHandle land with the module itself.
