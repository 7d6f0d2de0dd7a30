// Tests for AEMPCodecs.
