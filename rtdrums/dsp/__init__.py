"""Signal processing the engine runs: FFT, STFT, the NMF frame solvers, trigger detectors, the
learned trigger's network, template adaptation."""
