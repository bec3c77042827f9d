// Loaded first on a checked page: collects every error the page reports (console.error, uncaught
// exceptions, unhandled rejections) into window.pageErrors, so a check fails on any of them even
// when Chromium's own log misses one.
(function() {
    'use strict';
    window.pageErrors = [];
    var original = console.error;
    console.error = function() {
        window.pageErrors.push(Array.prototype.map.call(arguments, String).join(' '));
        return original.apply(console, arguments);
    };
    window.addEventListener('error', function(e) {
        window.pageErrors.push('uncaught: ' + e.message);
    });
    window.addEventListener('unhandledrejection', function(e) {
        window.pageErrors.push('unhandled rejection: ' + e.reason);
    });
})();
