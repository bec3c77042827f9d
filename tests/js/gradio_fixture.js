// Markup shaped like gradio 3.41's rendering of img2img's Mask blur slider and of the soft inpainting
// accordion (the WebUI's InputAccordion: a hidden gradio checkbox plus a gr.Accordion whose title bar
// holds the visible checkbox that the WebUI's inputAccordion.js inserts). Element ids, the nesting of
// block > wrap > head > label/span + number input, then the range input, and the `label-wrap` title
// bar follow what gradio 3.41.2 renders; svelte's generated class names are left out.
//
// A plain browser script, used by tests/browser/page.html and evaluated inside jsdom by the node tests.

(function(root) {
    'use strict';

    // [python name, label, minimum, maximum, step, default, help], as in lib_soft_inpainting/settings.py
    // (tests/browser/test_frontend.py keeps the two in step).
    var SLIDERS = [
        ['mask_blend_power', 'Schedule bias', 0, 8, 0.1, 1,
            'Shifts when the original is preserved during denoising: below 1 more near the end, ' +
            'above 1 more at the start.'],
        ['mask_blend_scale', 'Preservation strength', 0, 8, 0.05, 0.5,
            'How strongly partially masked (grey) content keeps the original. Low favours new content.'],
        ['inpaint_detail_preservation', 'Transition contrast boost', 1, 32, 0.5, 4,
            'Restores the contrast a plain blend loses in grey regions. High values may over-saturate.'],
        ['composite_mask_influence', 'Mask influence', 0, 1, 0.05, 0,
            'How much the painted mask, rather than what actually changed, decides the final composite.'],
        ['composite_difference_threshold', 'Difference threshold', 0, 8, 0.25, 0.5,
            'How much a region may change and still show the original pixels (50% opacity at this value). ' +
            'The change is measured per latent channel, so it means the same for 16-channel models.'],
        ['composite_difference_contrast', 'Difference contrast', 0, 8, 0.25, 2,
            'How sharp the step is between kept and regenerated regions. Low values may ghost.'],
    ];
    var TIMESTEP_LABEL = 'Noise level conversion (flow models such as SD3 and Flux; DDIM/PLMS/UniPC)';
    var INTRO = 'Soft inpainting lets a grey, blurred mask mean opacity: black keeps the original, white ' +
        'regenerates, grey blends. <strong>High <em>Mask blur</em> values are recommended.</strong>';

    function slider(id, label, min, max, step, value, rangeId, info) {
        var infoHtml = info ? ' <div class="info">' + info + '</div>' : '';
        return '<div id="' + id + '" class="block padded gradio-slider">' +
            '<div class="wrap"><div class="head"><label for="' + rangeId + '">' +
            '<span data-testid="block-info"' + (info ? ' class="has-info"' : '') + '>' + label + '</span>' +
            infoHtml + '</label> ' +
            '<input data-testid="number-input" type="number" min="' + min + '" max="' + max +
            '" step="' + step + '" value="' + value + '"></div></div> ' +
            '<input type="range" id="' + rangeId + '" name="cowbell" min="' + min + '" max="' + max +
            '" step="' + step + '" value="' + value + '"></div>';
    }

    /** The page body. options: enabled (bool), maskBlur (number), withMaskBlur (bool), withAccordion (bool). */
    function markup(options) {
        options = options || {};
        var enabled = options.enabled !== false;
        var maskBlur = options.maskBlur === undefined ? 4 : options.maskBlur;
        var checked = enabled ? ' checked' : '';
        var html = '<gradio-app><div class="gradio-container gradio-container-3-41-2 app"><div class="main">' +
            '<div class="contain"><div id="component-0" class="gap">' +
            '<div id="txt2img_prompt" class="block padded"><label><span data-testid="block-info">Prompt</span>' +
            '<textarea data-testid="textbox" rows="1"></textarea></label></div>';
        if (options.withMaskBlur !== false) {
            html += '<div class="form">' + slider('img2img_mask_blur', 'Mask blur', 0, 64, 1, maskBlur, 'range_id_0') +
                '</div>';
        }
        if (options.withAccordion !== false) {
            html += '<div class="form hidden"><div id="soft_inpaint_enabled-checkbox" class="block hidden padded">' +
                '<label><input type="checkbox" name="test" data-testid="checkbox"' + checked + '> ' +
                '<span class="ml-2">Soft inpainting</span></label></div></div>' +
                '<div id="soft_inpaint_enabled" class="block input-accordion padded' +
                (enabled ? ' input-accordion-open' : '') + '">' +
                '<div class="label-wrap' + (enabled ? ' open' : '') + '"><span>' +
                '<input type="checkbox" id="soft_inpaint_enabled-visible-checkbox" ' +
                'class="input-accordion-checkbox"' + checked + '>Soft inpainting</span> ' +
                '<span class="icon">&#9660;</span></div>' +
                '<div class="accordion-content" style="display: ' + (enabled ? 'block' : 'none') + ';">' +
                '<div class="gap"><div class="gr-group"><div class="styler">' +
                '<div class="block padded hide-container"><div class="prose" data-testid="markdown"><p>' +
                INTRO + '</p></div></div>' +
                '<div class="form"><div id="soft_inpaint_preset" class="block padded"><label class="container">' +
                '<span data-testid="block-info">Preset</span><div class="wrap"><div class="wrap-inner">' +
                '<div class="secondary-wrap"><input class="border-none" autocomplete="off" value="Default">' +
                '</div></div></div></label></div>';
            SLIDERS.forEach(function(row, i) {
                if (row[0] === 'composite_mask_influence') {
                    // A Markdown block between two sliders ends one form and starts the next.
                    html += '</div><div class="block padded hide-container"><div class="prose" ' +
                        'data-testid="markdown"><h3>Pixel composite</h3></div></div><div class="form">';
                }
                html += slider('soft_inpaint_' + row[0], row[1], row[2], row[3], row[4], row[5], 'range_id_' + (i + 1),
                    row[6]);
            });
            // The timestep checkbox closes the second form; a folded Help accordion (with its own
            // label-wrap) follows.
            html += '<div id="soft_inpaint_timestep_as_noise_level" class="block padded"><label>' +
                '<input type="checkbox" name="test" data-testid="checkbox" checked> ' +
                '<span class="ml-2">' + TIMESTEP_LABEL + '</span></label></div></div>' +
                '<div class="block padded"><div class="label-wrap"><span>Help</span> ' +
                '<span class="icon">&#9660;</span></div><div style="display: none;">' +
                '<div class="prose" data-testid="markdown"><h3>Denoising</h3></div></div></div>';
            html += '</div></div></div></div></div>';
        }
        html += '</div></div></div></div></gradio-app>';
        return html;
    }

    /** Put the fixture into `container` (default: the document's body), replacing its content. */
    function mount(doc, options, container) {
        (container || doc.body).innerHTML = markup(options);
        return doc.querySelector('gradio-app');
    }

    root.softInpaintFixture = {markup: markup, mount: mount, SLIDERS: SLIDERS, TIMESTEP_LABEL: TIMESTEP_LABEL};
})(typeof window !== 'undefined' ? window : this);
