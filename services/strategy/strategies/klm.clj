;; KLM (ALCHEMISER.md, "KLM").
;;
;; 1. Overbought: UVXY if any RSI(10) exceeds its threshold, checked in this order:
;;    QQQE 79, VTV 79, VOX 79, TECL 79, VOOG 79, VOOV 79, XLP 75, TQQQ 79, XLY 80, FAS 80, SPY 80.
;; 2. Pops: TQQQ < 30 -> TECL; SOXL < 30 -> SOXL; SPXL < 30 -> SPXL; LABU < 25 -> LABU.
;; 3. Switcher: XLK RSI(10) > KMLM RSI(10) -> the 2 lowest RSI(10) of TECL, SOXL, SVIX,
;;    equal weight; else the higher RSI(10) of SQQQ, TLT.
(defsymphony
 "KLM"
 {:asset-class "EQUITIES", :rebalance-frequency :daily}
 (if (> (rsi "QQQE" {:window 10}) 79)
   (asset "UVXY")
   (if (> (rsi "VTV" {:window 10}) 79)
     (asset "UVXY")
     (if (> (rsi "VOX" {:window 10}) 79)
       (asset "UVXY")
       (if (> (rsi "TECL" {:window 10}) 79)
         (asset "UVXY")
         (if (> (rsi "VOOG" {:window 10}) 79)
           (asset "UVXY")
           (if (> (rsi "VOOV" {:window 10}) 79)
             (asset "UVXY")
             (if (> (rsi "XLP" {:window 10}) 75)
               (asset "UVXY")
               (if (> (rsi "TQQQ" {:window 10}) 79)
                 (asset "UVXY")
                 (if (> (rsi "XLY" {:window 10}) 80)
                   (asset "UVXY")
                   (if (> (rsi "FAS" {:window 10}) 80)
                     (asset "UVXY")
                     (if (> (rsi "SPY" {:window 10}) 80)
                       (asset "UVXY")
                       ;; Pops
                       (if (< (rsi "TQQQ" {:window 10}) 30)
                         (asset "TECL")
                         (if (< (rsi "SOXL" {:window 10}) 30)
                           (asset "SOXL")
                           (if (< (rsi "SPXL" {:window 10}) 30)
                             (asset "SPXL")
                             (if (< (rsi "LABU" {:window 10}) 25)
                               (asset "LABU")
                               ;; Switcher
                               (group "KMLM switcher"
                                      [(if (> (rsi "XLK" {:window 10}) (rsi "KMLM" {:window 10}))
                                         (filter (rsi {:window 10})
                                                 (select-bottom 2)
                                                 [(asset "TECL") (asset "SOXL") (asset "SVIX")])
                                         (filter (rsi {:window 10})
                                                 (select-top 1)
                                                 [(asset "SQQQ") (asset "TLT")]))])))))))))))))))))
