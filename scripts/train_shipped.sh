#!/usr/bin/env bash
# Train (or resume) one of the shipped models with the recipe documented in docs/training.md.
# Runs live in checkpoints/<model>/ (last.pt, train.log; committed so that the next session
# resumes them); the x265 encode cache in checkpoints/encode-cache/ is not committed.
# Usage: scripts/train_shipped.sh MODEL MINUTES [THREADS]    e.g. scripts/train_shipped.sh stifn_qp37 60 1
# MODEL: mstfn_8bit, mstfn_8bit_bars, mstfn_6bit, mstfn_4bit, stifn_qp37, stifn_qp37_clean, stifn_medium_qp37, stifn_qp37_video, stifn_qp32, stifn_qp27, stifn_qp22, stifn_qp{37,32,27,22}_motion, stifn_qp37_strided, stifn_qp37_pans, stifn_qp{37,32,27,22}_extra, stifn_qp{37,32,27,22}_long, stifn_qp{37,32,27,22}_more, stifn_qp{37,32,27,22}_p112, msitf, msitf_p48
# Rerunning resumes; MINUTES is the run's total budget (summed over resumes), so raise it to go on.
# STEPS=N overrides the length of the cosine schedule (a resumed run follows the new length: a
# shorter one anneals the learning rate now, a longer one raises it again).
set -euo pipefail
cd "$(dirname "$0")/.."
model="$1"; minutes="$2"; threads="${3:-0}"
data="${VSRESTORE_SHARED:-../shared}/data"
# Training clips: everything in ../shared/data except the held-out evaluation clips
# (carphone, cars, CiscoVT2people, sparks). cars doubles as the validation clip during training.
train_rgb=("$data/vimeo_septuplet" "$data/clips/bikes.mp4" "$data/clips/bigbuckbunny.mp4" "$data/sintel16")
# and the natural photographs scikit-image bundles (the "train" extra), panned into clips: the clips
# above are already compressed or CG, these hold real detail, grain and smooth gradients.
stills_dir="$(./dev python -c 'import pathlib, skimage; print(pathlib.Path(skimage.__file__).parent / "data")')"
for still in astronaut.png chelsea.png coffee.png motorcycle_left.png rocket.jpg camera.png brick.png \
             grass.png gravel.png moon.png coins.png; do
    train_rgb+=("$stills_dir/$still")
done
# STIFN overfitted the set above (validation peaked after ~10k steps, then fell while the training
# loss still did): it also gets 120 frames per clip and more photographs of other content.
stifn_extra=()
for still in motorcycle_right.png retina.jpg hubble_deep_field.jpg ihc.png page.png; do
    stifn_extra+=("$stills_dir/$still")
done
val="$data/clips/cars_320x240_30f.i420"
# MSTFN and STIFN read 120 frames per clip (more material: bit truncation costs nothing to prepare,
# an x265 round trip is cached), MSITF 48 (each frame is a BD down-sampling, its patches are large).
case "$model" in mstfn_*|stifn_*) MAX_FRAMES="${MAX_FRAMES:-120}" ;; esac
common=(--out "checkpoints/$model" --minutes "$minutes" --threads "$threads" --max-frames "${MAX_FRAMES:-48}"
        --checkpoint-minutes 3 --val-data "$val")
vsr() { ./dev python -m vsrestore.cli "$@"; }
# the real camera clips of scripts/fetch_training_video.py (the *_extra recipes use the first five, *_long six)
camera_clips=(data/extra/cityCC0.mpg data/extra/vtest.avi data/extra/box.mp4 data/extra/cup.mp4 data/extra/jwpIntro.mp4
              data/extra/tree.avi data/extra/testMovie.mp4)
require() { for clip in "$@"; do [ -f "$clip" ] || { echo "$clip missing: run scripts/fetch_training_video.py" >&2; exit 1; }; done; }
case "$model" in
    stifn_qp37)
        vsr train --task stifn --config lite --qp 37 --data "${train_rgb[@]}" "${stifn_extra[@]}" --batch 8 --patch 64 \
            --loss mse --steps "${STEPS:-40000}" --lr 2e-4 --val-every 500 "${common[@]}" ;;
    mstfn_4bit)  # from scratch, centred on mid-rise; 4-bit bands are wide: patches that hold whole bands
        vsr train --task mstfn --config small --in-bits 4 --data "${train_rgb[@]}" --batch 4 --patch 96 \
            --steps "${STEPS:-40000}" --lr 2e-4 --val-every 250 "${common[@]}" ;;
    mstfn_6bit|mstfn_8bit)  # curriculum: 6 bits fine-tuned from the 4-bit run, 8 bits from the 6-bit run
        # (8-bit truth is 2x2-averaged, at half the size: the smallest photograph is then 76x56)
        bits="${model#mstfn_}"; bits="${bits%bit}"; from="mstfn_$((bits - 2))bit"; patch=$((bits == 8 ? 48 : 64))
        vsr train --task mstfn --config small --in-bits "$bits" --init "checkpoints/$from/last.pt" \
            --data "${train_rgb[@]}" --batch 8 --patch "$patch" --steps "${STEPS:-40000}" --lr 2e-4 --val-every 250 \
            "${common[@]}" ;;
    mstfn_8bit_bars)  # the 8-bit run fine-tuned with letterbox bars in a quarter of the patches
        vsr train --task mstfn --config small --in-bits 8 --letterbox 0.25 --init checkpoints/mstfn_8bit/last.pt \
            --data "${train_rgb[@]}" --batch 8 --patch 48 --steps "${STEPS:-1000}" --lr 1e-4 --val-every 100 \
            "${common[@]}" ;;
    stifn_qp37_clean)  # the QP 37 model fine-tuned on clean truth: the lossy training videos (Vimeo, the mp4 clips)
        # 2x2 area-averaged first; its validation had stayed flat for 14k steps on truth holding their own artifacts
        vsr train --task stifn --config lite --qp 37 --init checkpoints/stifn_qp37/last.pt --shrink-videos 2 \
            --data "${train_rgb[@]}" "${stifn_extra[@]}" --batch 8 --patch 64 --loss mse --steps "${STEPS:-6000}" --lr 2e-4 \
            --val-every 250 "${common[@]}" ;;
    stifn_medium_qp37)  # preset medium (a wider, deeper 3D part) grown from the clean QP 37 lite model, which had
        # flattened at +0.20 dB on validation, its training loss too (docs/training.md)
        vsr train --task stifn --config medium --qp 37 --init checkpoints/stifn_qp37_clean/last.pt --shrink-videos 2 \
            --data "${train_rgb[@]}" "${stifn_extra[@]}" --batch 8 --patch 64 --loss mse --steps "${STEPS:-5000}" --lr 2e-4 \
            --val-every 250 "${common[@]}" ;;
    stifn_qp37_video)  # the clean QP 37 model fine-tuned on the videos alone: on its training patches it gained
        # +0.5..+2.8 dB on panned stills, +0.1..+0.5 on the videos, and +0.2 on held-out video (docs/training.md)
        vsr train --task stifn --config lite --qp 37 --init checkpoints/stifn_qp37_clean/last.pt --shrink-videos 2 \
            --data "${train_rgb[@]:0:4}" --batch 8 --patch 64 --loss mse --steps "${STEPS:-3000}" --lr 2e-4 \
            --val-every 250 "${common[@]}" ;;
    stifn_qp32|stifn_qp27|stifn_qp22)  # fine-tuned on clean truth from the clean-truth model one QP step up (22 from 27:
        # the QP 37 model starts QP 27 video 0.9 dB below the decoded input, the QP 27 one is closer)
        qp="${model#stifn_qp}"; from=$([ "$qp" = 22 ] && echo stifn_qp27 || echo stifn_qp37_clean)
        vsr train --task stifn --config lite --qp "$qp" --init "checkpoints/$from/last.pt" --shrink-videos 2 \
            --data "${train_rgb[@]}" "${stifn_extra[@]}" --batch 8 --patch 64 --loss mse --steps "${STEPS:-4000}" --lr 1e-4 \
            --val-every 250 "${common[@]}" ;;
    stifn_qp37_motion|stifn_qp32_motion|stifn_qp27_motion|stifn_qp22_motion)  # each QP's model fine-tuned with the
        # stills panned like video (a sway, a moving object, sensor noise): on rigid pans it had learnt to average
        # the codings of one picture, gaining +0.5..+2.8 dB there and +0.1..+0.3 on real video. It made the held-out
        # clips worse (QP 37: +0.07 dB against +0.19; docs/training.md, "More material for STIFN")
        qp="${model#stifn_qp}"; qp="${qp%_motion}"; from="stifn_qp$qp"; [ "$qp" = 37 ] && from=stifn_qp37_clean
        vsr train --task stifn --config lite --qp "$qp" --init "checkpoints/$from/last.pt" --shrink-videos 2 \
            --pan-motion video --data "${train_rgb[@]}" "${stifn_extra[@]}" --batch 8 --patch 64 --loss mse \
            --steps "${STEPS:-5000}" --lr "$([ "$qp" = 37 ] && echo 2e-4 || echo 1e-4)" --val-every 250 "${common[@]}" ;;
    stifn_qp37_strided)  # the clean QP 37 model fine-tuned with every training video also at stride 2: the videos
        # are area-averaged 2x, which halves their motion; stride 2 restores it, and its frames are coded anew
        vsr train --task stifn --config lite --qp 37 --init checkpoints/stifn_qp37_clean/last.pt --shrink-videos 2 \
            --strides 1 2 --data "${train_rgb[@]}" "${stifn_extra[@]}" --batch 8 --patch 64 --loss mse \
            --steps "${STEPS:-4000}" --lr 2e-4 --val-every 250 "${common[@]}" ;;
    stifn_qp37_pans)  # the clean QP 37 model fine-tuned with each photograph as five 24-frame pans on their own
        # paths instead of one of 120 frames: up to 4x the speed (2 px a frame), in five directions
        vsr train --task stifn --config lite --qp 37 --init checkpoints/stifn_qp37_clean/last.pt --shrink-videos 2 \
            --pan-frames 24 --data "${train_rgb[@]}" "${stifn_extra[@]}" --batch 8 --patch 64 --loss mse \
            --steps "${STEPS:-4000}" --lr 2e-4 --val-every 250 "${common[@]}" ;;
    stifn_qp37_extra|stifn_qp32_extra|stifn_qp27_extra|stifn_qp22_extra)  # each QP's model fine-tuned with five more real camera clips, which PyPI
        # packages bundle (scripts/fetch_training_video.py writes them to data/extra/)
        qp="${model#stifn_qp}"; qp="${qp%_extra}"; from="stifn_qp$qp"; [ "$qp" = 37 ] && from=stifn_qp37_clean
        extra=("${camera_clips[@]:0:5}"); require "${extra[@]}"
        vsr train --task stifn --config lite --qp "$qp" --init "checkpoints/$from/last.pt" --shrink-videos 2 \
            --data "${train_rgb[@]}" "${extra[@]}" "${stifn_extra[@]}" --batch 8 --patch 64 --loss mse \
            --steps "${STEPS:-5000}" --lr "$([ "$qp" = 37 ] && echo 2e-4 || echo 1e-4)" --val-every 250 "${common[@]}" ;;
    stifn_qp37_long|stifn_qp32_long|stifn_qp27_long|stifn_qp22_long)  # each *_extra run fine-tuned with more of the real
        # footage: every video read on past --max-frames as up to 6 clips of 120 frames (vtest.avi alone gives 6), and
        # OpenCV's tree.avi: 52 clips, 34 of them real camera video (22 of 40 before)
        qp="${model#stifn_qp}"; qp="${qp%_long}"
        extra=("${camera_clips[@]:0:6}"); require "${extra[@]}"
        vsr train --task stifn --config lite --qp "$qp" --init "checkpoints/stifn_qp${qp}_extra/last.pt" --shrink-videos 2 \
            --video-segments 6 --data "${train_rgb[@]}" "${extra[@]}" "${stifn_extra[@]}" --batch 8 --patch 64 --loss mse \
            --steps "${STEPS:-3000}" --lr "$([ "$qp" = 37 ] && echo 2e-4 || echo 1e-4)" --val-every 250 "${common[@]}" ;;
    stifn_qp37_more|stifn_qp32_more|stifn_qp27_more|stifn_qp22_more|stifn_qp37_p112|stifn_qp32_p112|stifn_qp27_p112|stifn_qp22_p112)
        # each *_long run fine-tuned with PsychoPy's testMovie.mp4 added (another webcam recording, 237 frames: 2 more
        # clips, 54 in all, 36 of them real video); *_p112 on 112x112 patches, batch 3 (15 % more pixels a step):
        # STIFN lite sees 15 px around a pixel, so on 64x64 patches 72 % of the scored pixels see a padded border,
        # on 112x112 46 %
        qp="${model#stifn_qp}"; qp="${qp%_*}"
        size=(--batch 8 --patch 64); [ "${model##*_}" = p112 ] && size=(--batch 3 --patch 112)
        require "${camera_clips[@]}"
        vsr train --task stifn --config lite --qp "$qp" --init "checkpoints/stifn_qp${qp}_long/last.pt" --shrink-videos 2 \
            --video-segments 6 --data "${train_rgb[@]}" "${camera_clips[@]}" "${stifn_extra[@]}" "${size[@]}" \
            --loss mse --steps "${STEPS:-2500}" --lr "$([ "$qp" = 37 ] && echo 1e-4 || echo 5e-5)" --val-every 250 "${common[@]}" ;;
    msitf)  # a fresh network shrinks its residual to nothing and stays there (300 steps at lr 2e-4, eps 1e-8, with
        # Charbonnier or MSE); MSE with Adam's eps at 1e-12 and lr 5e-4 was the first to leave it (docs/training.md)
        vsr train --task msitf --config small --degradation bd --data "${train_rgb[@]}" --batch 4 --patch 24 \
            --loss mse --adam-eps 1e-12 --steps "${STEPS:-8000}" --lr 5e-4 --val-every 100 "${common[@]}" ;;
    msitf_p48)  # msitf fine-tuned on 48x48 patches: trained at 24x24, its in-between frames fell behind the blend on
        # larger inputs (whole frames -2.1 dB) while its input positions gained at every size (docs/training.md)
        vsr train --task msitf --config small --degradation bd --init checkpoints/msitf/last.pt --data "${train_rgb[@]}" \
            --batch 2 --patch 48 --loss mse --adam-eps 1e-12 --steps "${STEPS:-3000}" --lr 2e-4 --val-every 100 "${common[@]}" ;;
    *) echo "unknown model $model" >&2; exit 2 ;;
esac
