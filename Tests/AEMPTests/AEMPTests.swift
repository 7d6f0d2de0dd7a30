// Tests for AEMP land with the module itself.
