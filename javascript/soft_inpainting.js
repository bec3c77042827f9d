// Soft inpainting: hover hints for the accordions' controls (img2img's, and txt2img's, whose element
// ids start with `txt2img_`), and a visible recommendation (with a one-click fix) when soft
// inpainting is on while img2img's Mask blur is low.
//
// The WebUI loads every file in an extension's javascript/ folder as a classic script, all sharing
// one global scope, so everything lives inside this function; the only global it adds is
// `softInpaintingUi`. Every DOM lookup is guarded: this file never throws, whatever the page holds.
// Under node (tests) the same functions are exported through `module.exports`.

(function(root) {
    'use strict';

    var ACCORDION_ID = 'soft_inpaint_enabled';
    // The txt2img accordion: the same controls, ids prefixed, for the inpainting passes other
    // extensions (ADetailer) run on the finished picture. It has no Mask blur slider, so no hint.
    var TXT2IMG_PREFIX = 'txt2img_';
    var TXT2IMG_LABEL = 'Soft inpainting (ADetailer and other inpainting passes)';
    var CHECKBOX_SELECTOR = '#soft_inpaint_enabled-checkbox input';
    var VISIBLE_CHECKBOX_SELECTOR = '#soft_inpaint_enabled-visible-checkbox';
    var MASK_BLUR_ID = 'img2img_mask_blur';
    var HINT_ID = 'soft_inpaint_mask_blur_hint';
    var HINT_BUTTON_ID = 'soft_inpaint_mask_blur_hint_button';
    // Below this the mask's edge is too narrow to be grey, and soft inpainting acts almost like a hard mask.
    var MIN_RECOMMENDED_MASK_BLUR = 16;
    var SUGGESTED_MASK_BLUR = 32;
    var BUTTON_TEXT = 'Set mask blur to ' + SUGGESTED_MASK_BLUR;
    var HINT_TEXT = 'Soft inpainting needs a high Mask blur (16 or more; 32 works well): ' +
        'the blur is what makes the edge of the mask grey, and grey is where old and new blend.';

    // Hover hints by label text, the WebUI's convention (its global `titles`, read by hints.js).
    var TITLES = {
        'Soft inpainting': 'Treat the mask as opacity: black keeps the original, white regenerates, grey blends. ' +
            'Use a high Mask blur.',
        'Soft inpainting (ADetailer and other inpainting passes)': 'Acts only in the inpainting passes other ' +
            'extensions run on the finished picture, such as ADetailer\'s: their mask\'s edge blends instead ' +
            'of showing a seam. Raise ADetailer\'s Inpaint mask blur to 16 or more.',
        'Schedule bias': 'When the original is held on to while denoising: below 1 mostly at the end ' +
            '(its fine detail survives), above 1 mostly at the start (its composition survives).',
        'Preservation strength': 'How much grey (partly masked) regions keep the original. ' +
            'Low follows the new content, high stays close to the original.',
        'Transition contrast boost': 'Keeps the contrast a plain blend loses where old and new differ. ' +
            'Very high values can over-saturate.',
        'Mask influence': 'How much the painted mask, rather than what actually changed, decides the final ' +
            'composite. 0: only the change. 1: follow the mask.',
        'Difference threshold': 'How much a region may change and still show the original pixels ' +
            '(half original at this value). Raise it if old pixels show too little.',
        'Difference contrast': 'How sharp the step between kept and regenerated regions is. ' +
            'Low: long, gradual transitions (may ghost). High: crisp but sudden.',
        'Preset': 'Sets all six sliders at once. "Seamless blend" is the combination a widely read guide ' +
            'found to blend best. The preset name is not stored in the image.',
        'Seamless blend': 'Schedule bias 0.2, preservation strength 0.05, contrast boost 1, ' +
            'difference threshold 1.25, difference contrast 1.25.',
        'Noise level conversion (flow models such as SD3 and Flux; DDIM/PLMS/UniPC)': 'Flow models report a sigma ' +
            'from 1 to 0, DDIM/PLMS/UniPC a timestep (0-999), not the noise level the schedule is made for. ' +
            'On: converted first, so grey regions blend as with SD and Euler. Off: as the built-in does.',
    };
    // Labels other extensions use too: their hints are set on our own controls only, never globally.
    var SCOPED_ONLY = {'Preset': true};
    // Our controls by element id, for hints that do not depend on label text.
    var TITLE_BY_ELEM_ID = {
        'soft_inpaint_preset': 'Preset',
        'soft_inpaint_mask_blend_power': 'Schedule bias',
        'soft_inpaint_mask_blend_scale': 'Preservation strength',
        'soft_inpaint_inpaint_detail_preservation': 'Transition contrast boost',
        'soft_inpaint_composite_mask_influence': 'Mask influence',
        'soft_inpaint_composite_difference_threshold': 'Difference threshold',
        'soft_inpaint_composite_difference_contrast': 'Difference contrast',
        'soft_inpaint_timestep_as_noise_level':
            'Noise level conversion (flow models such as SD3 and Flux; DDIM/PLMS/UniPC)',
    };

    function translate(text) {
        try {
            var table = root && root.localization;
            if (table && typeof table[text] === 'string' && table[text]) return table[text];
        } catch (e) {
            // no localization table: keep the English text
        }
        return text;
    }

    /** The node our lookups start from: the WebUI's gradioApp() when present, else the document. */
    function appRoot() {
        try {
            if (root && typeof root.gradioApp === 'function') {
                var app = root.gradioApp();
                if (app && typeof app.querySelector === 'function') return app;
            }
        } catch (e) {
            // fall through to the document
        }
        if (root && root.document && typeof root.document.querySelector === 'function') return root.document;
        return null;
    }

    function find(app, selector) {
        try {
            return app && typeof app.querySelector === 'function' ? app.querySelector(selector) : null;
        } catch (e) {
            return null;
        }
    }

    /** Whether the hint belongs on screen: soft inpainting on and a mask blur below the recommendation. */
    function shouldShowHint(enabled, maskBlur) {
        return enabled === true && typeof maskBlur === 'number' && isFinite(maskBlur) &&
            maskBlur < MIN_RECOMMENDED_MASK_BLUR;
    }

    /** The hidden gradio checkbox is the truth; the accordion's visible checkbox mirrors it. */
    function isEnabled(app) {
        var box = find(app, CHECKBOX_SELECTOR) || find(app, VISIBLE_CHECKBOX_SELECTOR);
        return Boolean(box && box.checked);
    }

    function maskBlurInputs(app) {
        return {
            number: find(app, '#' + MASK_BLUR_ID + ' input[type=number]'),
            range: find(app, '#' + MASK_BLUR_ID + ' input[type=range]'),
        };
    }

    /** The Mask blur slider's value, or NaN when the page has no such slider. */
    function readMaskBlur(app) {
        var inputs = maskBlurInputs(app);
        var candidates = [inputs.number, inputs.range];
        for (var i = 0; i < candidates.length; i++) {
            var input = candidates[i];
            if (!input || input.value === '' || input.value === undefined || input.value === null) continue;
            var value = parseFloat(input.value);
            if (isFinite(value)) return value;
        }
        return NaN;
    }

    /** Tell gradio an input changed: the WebUI's updateInput() when the page has it (gradio's components
     * listen for `input`), else the same bubbling event by hand. */
    function fireInput(input) {
        var win = (input.ownerDocument && input.ownerDocument.defaultView) || root;
        if (win && typeof win.updateInput === 'function') {
            win.updateInput(input);
            return;
        }
        input.dispatchEvent(new win.Event('input', {bubbles: true}));
    }

    /** Set the Mask blur slider and fire `input` so gradio takes the new value. True when it was set. */
    function setMaskBlur(app, value) {
        try {
            var inputs = maskBlurInputs(app);
            var targets = [inputs.number, inputs.range].filter(Boolean);
            if (!targets.length) return false;
            targets.forEach(function(input) {
                input.value = String(value);
            });
            targets.forEach(fireInput);
            return true;
        } catch (e) {
            return false;
        }
    }

    function hintMessage(maskBlur) {
        return translate('Mask blur is') + ' ' + maskBlur + '. ' + translate(HINT_TEXT);
    }

    /** Build the hint box (hidden until needed) and place it right under the accordion's title bar,
     * so it shows even while the accordion is closed. */
    function createHint(app, accordion) {
        var doc = accordion.ownerDocument;
        var hint = doc.createElement('div');
        hint.id = HINT_ID;
        hint.className = 'soft-inpaint-hint';
        hint.setAttribute('role', 'status');
        hint.style.cssText = 'display:none; align-items:center; flex-wrap:wrap; gap:0.5em; margin:0.4em 0; ' +
            'padding:0.5em 0.75em; border-radius:6px; font-size:0.9em; line-height:1.35; ' +
            'border:1px solid var(--color-accent, #f97316); ' +
            'background:var(--color-accent-soft, rgba(249, 115, 22, 0.12)); color:var(--body-text-color, inherit);';
        var text = doc.createElement('span');
        text.className = 'soft-inpaint-hint-text';
        text.style.flex = '1 1 16em';
        var button = doc.createElement('button');
        button.id = HINT_BUTTON_ID;
        button.type = 'button';
        button.className = 'gradio-button secondary soft-inpaint-hint-button';
        button.textContent = translate(BUTTON_TEXT);
        button.title = translate('Recommended for soft inpainting: a wide, grey mask edge.');
        // Gradio's own button styles are scoped to its components, so use its theme variables here.
        button.style.cssText = 'flex:0 0 auto; cursor:pointer; padding:var(--button-small-padding, 0.3em 0.8em); ' +
            'border:1px solid var(--button-secondary-border-color, #d1d5db); ' +
            'border-radius:var(--button-small-radius, 6px); font-size:var(--button-small-text-size, 0.9em); ' +
            'background:var(--button-secondary-background-fill, #f3f4f6); ' +
            'color:var(--button-secondary-text-color, inherit);';
        button.addEventListener('click', function(event) {
            // Keep the click from toggling the accordion.
            event.stopPropagation();
            event.preventDefault();
            setMaskBlur(app, SUGGESTED_MASK_BLUR);
            updateHint(app);
        });
        hint.appendChild(text);
        hint.appendChild(button);
        var labelWrap = null;
        for (var i = 0; i < accordion.children.length; i++) {
            if (accordion.children[i].classList && accordion.children[i].classList.contains('label-wrap')) {
                labelWrap = accordion.children[i];
                break;
            }
        }
        if (labelWrap) {
            accordion.insertBefore(hint, labelWrap.nextSibling);
        } else {
            accordion.appendChild(hint);
        }
        return hint;
    }

    /** Show or hide the mask blur hint for the page's current state. Returns whether it is shown. */
    function updateHint(app) {
        try {
            app = app || appRoot();
            var accordion = find(app, '#' + ACCORDION_ID);
            var hint = find(app, '#' + HINT_ID);
            var maskBlur = readMaskBlur(app);
            var show = Boolean(accordion) && shouldShowHint(isEnabled(app), maskBlur);
            // Change the DOM only when something differs: the WebUI calls us after every DOM change,
            // so an unconditional write would keep re-triggering itself.
            if (!show) {
                if (hint && hint.style.display !== 'none') hint.style.display = 'none';
                return false;
            }
            hint = hint || createHint(app, accordion);
            var text = find(hint, '.soft-inpaint-hint-text');
            var message = hintMessage(maskBlur);
            if (text && text.textContent !== message) text.textContent = message;
            if (hint.style.display !== 'flex') hint.style.display = 'flex';
            return true;
        } catch (e) {
            return false;
        }
    }

    /** Add our hover hints to the WebUI's `titles` table; an existing entry (maybe another extension's)
     * is left as it is, and generic labels stay out of it. Returns the keys added. */
    function registerTitles(table) {
        var added = [];
        if (!table || typeof table !== 'object') return added;
        Object.keys(TITLES).forEach(function(label) {
            if (SCOPED_ONLY[label] || Object.prototype.hasOwnProperty.call(table, label)) return;
            table[label] = TITLES[label];
            added.push(label);
        });
        return added;
    }

    function setTitle(element, label) {
        if (element && !element.title) element.title = translate(TITLES[label]);
    }

    /** Put the hover hints straight onto our own controls (found by element id), so they show without
     * relying on label text: labels may be translated, and "Preset" is not in the global table. Both
     * accordions (img2img's and txt2img's) get them. */
    function applyTitles(app) {
        var count = 0;
        try {
            app = app || appRoot();
            [['', 'Soft inpainting'], [TXT2IMG_PREFIX, TXT2IMG_LABEL]].forEach(function(tab) {
                var prefix = tab[0];
                var accordion = find(app, '#' + prefix + ACCORDION_ID);
                if (accordion) {
                    var title = find(accordion, '.label-wrap > span') || find(accordion, '.label-wrap');
                    if (title) {
                        setTitle(title, tab[1]);
                        count++;
                    }
                }
                Object.keys(TITLE_BY_ELEM_ID).forEach(function(id) {
                    var block = find(app, '#' + prefix + id);
                    if (!block) return;
                    var label = TITLE_BY_ELEM_ID[id];
                    setTitle(find(block, '[data-testid=block-info]') || find(block, 'label span') || block, label);
                    var input = find(block, 'input');
                    if (input && id !== 'soft_inpaint_preset') setTitle(input, label);
                    count++;
                });
            });
        } catch (e) {
            return count;
        }
        return count;
    }

    function refresh() {
        var app = appRoot();
        applyTitles(app);
        updateHint(app);
    }

    function isRelevantEvent(event) {
        var target = event && event.target;
        if (!target || typeof target.closest !== 'function') return true;
        return Boolean(target.closest('#' + MASK_BLUR_ID + ', #' + ACCORDION_ID + ', #' + ACCORDION_ID +
            '-checkbox') || target.tagName === 'GRADIO-APP');
    }

    /** Hook into the page: the WebUI's callbacks when present, plain DOM events otherwise. */
    function install(win) {
        win = win || root;
        try {
            registerTitles(win.titles);
        } catch (e) {
            // no titles table on this page
        }
        var safeRefresh = function() {
            try {
                registerTitles(win.titles);
                refresh();
            } catch (e) {
                // never let a page problem surface as a console error
            }
        };
        try {
            if (typeof win.onUiLoaded === 'function') win.onUiLoaded(safeRefresh);
            if (typeof win.onAfterUiUpdate === 'function') {
                win.onAfterUiUpdate(safeRefresh);
            } else if (typeof win.onUiUpdate === 'function') {
                win.onUiUpdate(safeRefresh);
            }
            var doc = win.document;
            if (doc && typeof doc.addEventListener === 'function') {
                var onEvent = function(event) {
                    if (isRelevantEvent(event)) safeRefresh();
                };
                // Bubble phase: the page's own handlers have run, so the state read is the new one.
                doc.addEventListener('input', onEvent);
                doc.addEventListener('change', onEvent);
                if (typeof win.onUiLoaded !== 'function') {
                    if (doc.readyState === 'loading') {
                        doc.addEventListener('DOMContentLoaded', safeRefresh);
                    } else {
                        safeRefresh();
                    }
                }
            }
        } catch (e) {
            return false;
        }
        return true;
    }

    var api = {
        ACCORDION_ID: ACCORDION_ID,
        TXT2IMG_PREFIX: TXT2IMG_PREFIX,
        TXT2IMG_LABEL: TXT2IMG_LABEL,
        HINT_ID: HINT_ID,
        HINT_BUTTON_ID: HINT_BUTTON_ID,
        MASK_BLUR_ID: MASK_BLUR_ID,
        MIN_RECOMMENDED_MASK_BLUR: MIN_RECOMMENDED_MASK_BLUR,
        SUGGESTED_MASK_BLUR: SUGGESTED_MASK_BLUR,
        BUTTON_TEXT: BUTTON_TEXT,
        TITLES: TITLES,
        TITLE_BY_ELEM_ID: TITLE_BY_ELEM_ID,
        shouldShowHint: shouldShowHint,
        isEnabled: isEnabled,
        readMaskBlur: readMaskBlur,
        setMaskBlur: setMaskBlur,
        hintMessage: hintMessage,
        updateHint: updateHint,
        registerTitles: registerTitles,
        applyTitles: applyTitles,
        install: install,
    };

    if (typeof module !== 'undefined' && module && module.exports) {
        module.exports = api;
    }
    if (typeof window !== 'undefined' && root === window && root.document) {
        root.softInpaintingUi = api;
        install(root);
    }
})(typeof window !== 'undefined' ? window : this);
