;; TECL for the long term (ALCHEMISER.md, "TECL").
;;
;; Bull (SPY above its 200-day SMA): TQQQ RSI(10) > 79 -> UVXY 25% / BIL 75%;
;;   SPY RSI(10) > 80 -> the same; else the bull switcher.
;; Bear: TQQQ RSI(10) < 31 -> TECL; SPXL RSI(10) < 29 -> SPXL;
;;   UVXY RSI(10) > 84 -> UVXY 15% / BIL 85%; UVXY RSI(10) > 74 -> BIL; else the bear switcher.
;; Switcher: XLK RSI(10) > KMLM RSI(10) -> BIL if XLK RSI(10) > 81 else TECL;
;;   otherwise TECL if XLK RSI(10) < 29, else BIL (bull) or the higher RSI(9) of SQQQ, BSV (bear).
(defsymphony
 "TECL"
 {:asset-class "EQUITIES", :rebalance-frequency :daily}
 (if (> (current-price "SPY") (moving-average-price "SPY" {:window 200}))
   (group "Bull"
          [(if (> (rsi "TQQQ" {:window 10}) 79)
             (weight-specified 0.25 (asset "UVXY") 0.75 (asset "BIL"))
             (if (> (rsi "SPY" {:window 10}) 80)
               (weight-specified 0.25 (asset "UVXY") 0.75 (asset "BIL"))
               (group "Bull switcher"
                      [(if (> (rsi "XLK" {:window 10}) (rsi "KMLM" {:window 10}))
                         (if (> (rsi "XLK" {:window 10}) 81)
                           (asset "BIL")
                           (asset "TECL"))
                         (if (< (rsi "XLK" {:window 10}) 29)
                           (asset "TECL")
                           (asset "BIL")))])))])
   (group "Bear"
          [(if (< (rsi "TQQQ" {:window 10}) 31)
             (asset "TECL")
             (if (< (rsi "SPXL" {:window 10}) 29)
               (asset "SPXL")
               (if (> (rsi "UVXY" {:window 10}) 84)
                 (weight-specified 0.15 (asset "UVXY") 0.85 (asset "BIL"))
                 (if (> (rsi "UVXY" {:window 10}) 74)
                   (asset "BIL")
                   (group "Bear switcher"
                          [(if (> (rsi "XLK" {:window 10}) (rsi "KMLM" {:window 10}))
                             (if (> (rsi "XLK" {:window 10}) 81)
                               (asset "BIL")
                               (asset "TECL"))
                             (if (< (rsi "XLK" {:window 10}) 29)
                               (asset "TECL")
                               (filter (rsi {:window 9})
                                       (select-top 1)
                                       [(asset "SQQQ") (asset "BSV")])))])))))])))
