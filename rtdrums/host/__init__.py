"""The live host: audio interface, MIDI out, recording and the terminal view around the engine.

These are the only modules that touch devices; the engine knows nothing of them.
  audio     PortAudio (sounddevice): loading, device listing, device/channel/rate checks
  midi      MIDI output ports (JACK, ALSA) and the note-on sender
  recorder  preallocated ring + worker thread writing the session folder
  config    settings from a TOML file and command-line flags
  view      the terminal display and the summary
  session   the audio callback and the run loop tying them together
  jackserver  starting a private JACK server (dummy backend) for tests and benchmarks
  bench     callback time and hit-to-note latency on a JACK server
"""
