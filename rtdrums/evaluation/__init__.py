"""Evaluation of rtdrums on rendered mixtures and annotated recordings, with baselines.

metrics      onset P/R/F (mir_eval), trigger latency, velocity correlation, SDR and SI-SDR
annotations  `time label` onset files of real recordings
baselines    non-causal NMF upper bound, libnmfd NMFD, naive band-energy trigger
protocol     which preset a run uses: generic, calibrated, leave-one-kit-out
run          evaluate a kit (or one annotated recording): every number in one dict
report       Markdown table, JSON, PNG figures
speed        time per frame of the engine's frame solver against libnmfd and scikit-learn
train_stage_profile  CPU, wall and peak memory of each stage of `rtdrums train`
velocity_readout_study  velocity read-outs compared on one soundcheck preset's decisions
drum_errors  where a preset's kick and snare errors come from, hit by hit
latency_tail  each late note's latency split into the sound's part and the trigger's
kit_tool_args  the command line shared by drum_errors and latency_tail
"""
