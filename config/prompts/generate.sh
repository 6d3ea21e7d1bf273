#!/bin/sh
# Generates the IVR prompts in config/prompts/<lang>/ as 8 kHz mono WAV, once in
# G.711 µ-law (<name>.pcmu.wav) and once in A-law (<name>.pcma.wav).
# Needs the Debian packages espeak-ng (text to speech, with a Mandarin voice) and
# sox. The output is committed: tests and the relay never run this script.
#   config/prompts/generate.sh
set -eu
cd "$(dirname "$0")"
command -v espeak-ng >/dev/null || { echo "apt-get install espeak-ng" >&2; exit 1; }
command -v sox >/dev/null || { echo "apt-get install sox" >&2; exit 1; }

say() { # lang voice name text
    mkdir -p "$1"
    tmp=$(mktemp --suffix=.wav)
    espeak-ng -v "$2" -s 150 -w "$tmp" "$4"
    # 8 kHz mono, a little headroom, 200 ms of silence at the end.
    sox "$tmp" -r 8000 -c 1 -e u-law -b 8 "$1/$3.pcmu.wav" gain -n -3 pad 0 0.2
    sox "$tmp" -r 8000 -c 1 -e a-law -b 8 "$1/$3.pcma.wav" gain -n -3 pad 0 0.2
    rm -f "$tmp"
}

say en en-us enter_extension "Please enter your extension, then the pound key."
say en en-us invalid_extension "That extension is not valid. Please try again."
say en en-us goodbye "Sorry, we could not connect your call. Goodbye."
say en en-us not_serving "This number no longer serves your parcel. Goodbye."

say zh cmn enter_extension "请输入分机号，以井号键结束。"
say zh cmn invalid_extension "分机号无效，请重新输入。"
say zh cmn goodbye "抱歉，无法接通您的电话。再见。"
say zh cmn not_serving "此号码已不再为您的包裹服务。再见。"
