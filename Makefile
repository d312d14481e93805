# Two entry points: `make demo` and `make test`. Both build .venv from scratch when needed.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SYSPKG := libportaudio2 jackd2 fluidsynth fluid-soundfont-gm

.PHONY: demo test sysdeps bench results preset kits sfkits clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	# libnmfd (a baseline in `rtdrums eval`) pins old numpy/pysoundfile/jupyter it does not use
	$(VENV)/bin/pip install -q --no-deps 'libnmfd==1.0.0'
	touch $(STAMP)

# apt-get install $(1) quietly, refreshing the package lists only when the first try fails
APT_INSTALL = (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(1) >/dev/null 2>&1 || \
	(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(1) >/dev/null))

# PortAudio and a JACK server for the live host and its end-to-end tests; fluidsynth and the
# FluidR3 General MIDI soundfont for the soundfont kits (sfkits).
sysdeps:
	@if dpkg -s $(SYSPKG) >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "jackd2 jackd/tweak_rt_limits boolean false" | debconf-set-selections; \
		$(call APT_INSTALL,$(SYSPKG)) \
		|| echo "could not install $(SYSPKG): the live-host and soundfont tests will skip"; \
	else echo "install $(SYSPKG) (apt-get install $(SYSPKG)) to run the live-host and soundfont tests"; fi

demo: $(STAMP)
	$(VENV)/bin/rtdrums demo

test: $(STAMP) sysdeps
	$(PY) -m pytest -q -n 2 --dist loadgroup

bench: $(STAMP)
	$(VENV)/bin/rtdrums bench

# README Results tables: rtdrums eval over the allowed Hydrogen kits in both protocols, with the
# baselines, on dry renders and (--rooms) renders recorded in simulated rooms. Installs
# hydrogen-drumkits when run as root.
KITS_DIR     := /usr/share/hydrogen/data/drumkits
RESULTS_ARGS ?= --seconds 15 --jobs 2 --rooms
results: $(STAMP) kits
	$(PY) -m rtdrums.evaluation.results --out results $(RESULTS_ARGS)

# the drum kits of the FluidR3 General MIDI soundfont as Hydrogen kit folders (rtdrums.training.soundfont_kits)
SF2     := /usr/share/sounds/sf2/FluidR3_GM.sf2
SF_KITS := build/soundfont-kits
sfkits: $(STAMP) sysdeps
	$(PY) -m rtdrums.training.soundfont_kits $(SF2) --out $(SF_KITS)

# presets/default: templates from the five acoustic kits allowed for training; triggers tuned and
# the learned trigger trained on the shipped grooves rendered with them and with the FluidR3 kits
# (trigger kits: no templates in the preset, as a user's kit has none; about 25 minutes on an
# idle 2-core machine, 9.5 GB).
TRAIN_KITS := ForzeeStereo Millo_MultiLayered2 Millo_MultiLayered3 ColomboAcousticDrumkit rumpf_kit_z01_h2
DEFAULT_COMPONENTS := kick=2,snare=3,hihat_closed=2,hihat_open=1,hihat_pedal=1,tom=2,cymbal=2,other=0
# the note-on leaves with the learned trigger's decision; half the tuning and trigger renders are
# recordings in simulated rooms (rtdrums.training.rooms)
PRESET_ARGS ?= --scan-ms 0 --rooms 0.5 --trigger-kit $(SF_KITS)
# the learned trigger averages the trained network and one more per ENSEMBLE_SEEDS, each retrained
# on the preset's templates and tuning from its seed on a third of the model cuts (about 2 min and
# 3.7 GB each; rtdrums.training.ensemble, docs/default-preset.md)
ENSEMBLE_SEEDS ?= 1 2 3 4 5 6
# the learned trigger's thresholds (kick,snare,hihat), chosen for the average on soundfont kits no
# preset heard; training's own choice fits the training kits and misses half the snares of other kits
LEARNED_THRESHOLDS ?= 0.4,0.4,0.4
# drums the threshold detector triggers too, beside the learned trigger: it finds the kicks the
# networks are unsure of on kits and rooms they never heard (docs/default-preset.md)
BOTH_DETECTORS ?= kick
preset: $(STAMP) kits sfkits
	$(VENV)/bin/rtdrums train $(foreach k,$(TRAIN_KITS),--kit $(KITS_DIR)/$(k)) --base none \
		--components $(DEFAULT_COMPONENTS) $(PRESET_ARGS) --name default --out presets/default
	$(foreach s,$(ENSEMBLE_SEEDS),$(PY) -m rtdrums.training.ensemble network build/ensemble/seed-$(s) \
		--base presets/default $(foreach k,$(TRAIN_KITS),--kit $(KITS_DIR)/$(k)) --trigger-kit $(SF_KITS) --seed $(s) &&) true
	$(PY) -m rtdrums.training.ensemble join presets/default presets/default \
		$(foreach s,$(ENSEMBLE_SEEDS),build/ensemble/seed-$(s))
	$(PY) -m rtdrums.training.learned_thresholds presets/default $(LEARNED_THRESHOLDS) --both "$(BOTH_DETECTORS)"

kits:
	@if [ ! -d $(KITS_DIR)/ForzeeStereo ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			$(call APT_INSTALL,hydrogen-drumkits); \
		else echo "install hydrogen-drumkits (apt-get install hydrogen-drumkits)"; exit 1; fi; \
	fi

clean:
	rm -rf $(VENV) build *.egg-info
