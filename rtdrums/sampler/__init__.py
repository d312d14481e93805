"""The built-in drum sampler: samples per drum, played from the engine's triggers in the same
block (see docs/sampler.md). settings: the [sampler] table; sources: loading the samples;
voices: the compiled voice pool; build: the tables for one preset and stream rate."""
